/*
 * LeaderLease against a real nats-server: one holder at a time, hand-over on release, expiry
 * of a crashed holder's lease after the bucket TTL, and (a known bug) a short NATS outage.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KV } from '@nats-io/kv';
import { startNatsServer, type NatsServer } from '@vmferry/testkit';
import { LeaderLease, openCoordination, type Coordination, type CoordinationTiming } from '../src/index.js';

/** A shorter lease than production's (LEADER_TTL_MS): its expiry is what two tests wait for. */
const TTL_MS = 1500;
const BEAT_MS = 200;
/** Requests keep the client's 5 s timeout: the outage test is about heartbeats that hang that long. */
const REQUEST_TIMEOUT_MS = 5000;
const TIMING: CoordinationTiming = { leaderTtlMs: TTL_MS };

let server: NatsServer;
const opened: Coordination[] = [];

async function coordination(url = server.url): Promise<Coordination> {
  const c = await openCoordination(url, 'leader-test', undefined, TIMING);
  opened.push(c);
  return c;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (!(await cond())) {
    if (Date.now() - started > timeoutMs) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
  return Date.now() - started;
}

/** Resolves once the lease key has been written `n` more times (heartbeats) than now. */
async function heartbeats(kv: KV, key: string, n: number): Promise<void> {
  const first = (await kv.get(key))?.revision ?? 0;
  await waitFor(`${n} heartbeats`, async () => ((await kv.get(key))?.revision ?? 0) >= first + n, (n + 2) * BEAT_MS + 2000);
}

before(async () => {
  server = await startNatsServer();
});

after(async () => {
  for (const c of opened) await c.close().catch(() => undefined);
  await server?.stop();
});

describe('LeaderLease', () => {
  test('one holder at a time; releasing hands the lease over at the next beat', async () => {
    const [c1, c2] = [await coordination(), await coordination()];
    const changes: string[] = [];
    const a = new LeaderLease(c1.leader, 'lease-1', 'a', (l) => changes.push(`a:${l}`), BEAT_MS);
    const b = new LeaderLease(c2.leader, 'lease-1', 'b', (l) => changes.push(`b:${l}`), BEAT_MS);
    await a.start();
    await b.start();
    try {
      assert.equal(a.isLeader, true);
      assert.equal(b.isLeader, false);
      // Heartbeats spanning more than the TTL (a release racing an in-flight heartbeat is tested below).
      await heartbeats(c2.leader, 'lease-1', Math.ceil(TTL_MS / BEAT_MS) + 2);
      assert.equal(a.isLeader, true, 'heartbeats keep the lease');
      assert.equal(b.isLeader, false);
      assert.equal((await c2.leader.get('lease-1'))?.json<{ id: string }>().id, 'a');
      await a.stop();
      assert.equal(a.isLeader, false);
      const ms = await waitFor('b to lead', () => b.isLeader, 5 * BEAT_MS);
      assert.ok(ms <= 2 * BEAT_MS + 200, `hand-over took ${ms} ms`);
      assert.equal((await c2.leader.get('lease-1'))?.json<{ id: string }>().id, 'b');
      assert.deepEqual(changes, ['a:true', 'a:false', 'b:true']);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test("a crashed holder's lease expires after the TTL, then another takes it", async () => {
    const [c1, c2] = [await coordination(), await coordination()];
    const a = new LeaderLease(c1.leader, 'lease-2', 'a', undefined, BEAT_MS);
    const b = new LeaderLease(c2.leader, 'lease-2', 'b', undefined, BEAT_MS);
    await a.start();
    await b.start();
    try {
      assert.equal(a.isLeader, true);
      await heartbeats(c2.leader, 'lease-2', 3);
      await c1.nc.close(); // a crash: no release
      const ms = await waitFor('b to lead', () => b.isLeader, TTL_MS + 4000);
      assert.ok(ms >= TTL_MS - 2 * BEAT_MS - 300, `b took over after only ${ms} ms`);
      assert.equal(a.isLeader, false, 'a, cut off, stepped down');
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('releasing while a heartbeat is in flight still hands the lease over at once', {}, async () => {
    const [c1, c2] = [await coordination(), await coordination()];
    // The holder's heartbeat replies take 100 ms (a slow link); stop() is called during one.
    let updating = false;
    const slowKv = new Proxy(c1.leader, {
      get(target, prop, receiver) {
        if (prop === 'update') {
          return async (...args: Parameters<KV['update']>): Promise<number> => {
            updating = true;
            try {
              const revision = await target.update(...args);
              await sleep(100); // the reply is slow: the server has the heartbeat, the lease not yet
              return revision;
            } finally {
              updating = false;
            }
          };
        }
        const v: unknown = Reflect.get(target, prop, receiver);
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const a = new LeaderLease(slowKv, 'lease-4', 'a', undefined, 400);
    const b = new LeaderLease(c2.leader, 'lease-4', 'b', undefined, BEAT_MS);
    await a.start();
    await b.start();
    try {
      assert.equal(a.isLeader, true);
      await waitFor('a heartbeat in flight', () => updating, 2000);
      await a.stop();
      // Fails fast (the bug would make this ~6 s, the lease TTL).
      await waitFor('b to lead', () => b.isLeader, 2 * BEAT_MS + 1000);
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  test('a leader keeps its lease across a short NATS outage (no spurious step-down)', {}, async () => {
    const own = await startNatsServer();
    const c = await coordination(own.url);
    const changes: { atMs: number; leading: boolean }[] = [];
    const lease = new LeaderLease(c.leader, 'lease-3', 'a', (leading) => changes.push({ atMs: Date.now(), leading }), BEAT_MS);
    try {
      await lease.start();
      assert.equal(lease.isLeader, true);
      await heartbeats(c.leader, 'lease-3', 3);
      await own.kill();
      await sleep(1000); // the outage
      await own.restart();
      const upAt = Date.now();
      await waitFor('heartbeats to renew the lease again', () => lease.isLeader, 5000);
      // Renewals work again; a heartbeat made during the outage times out later. Once one
      // started after that has finished, every earlier one has (they run one at a time).
      const renewedFrom = Date.now();
      await waitFor('a heartbeat started after the renewal to finish', () => lease.settledSinceMs > renewedFrom, 4 * REQUEST_TIMEOUT_MS + 4000);
      const afterUp = changes.filter((ch) => ch.atMs > upAt + 1000);
      assert.deepEqual(afterUp, [], 'lease changes after NATS was back and renewals worked');
      assert.equal(lease.isLeader, true);
    } finally {
      await lease.stop();
      await c.close().catch(() => undefined);
      await own.stop();
    }
  });
});
