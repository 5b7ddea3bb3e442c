/**
 * `vmferry events [--since D] [--follow]`: events from the VMFERRY_EVENTS stream.
 *
 * `--follow` survives a NATS restart or failover: the client reconnects on its own (endless
 * attempts), and on every reconnect, or when the consumer reports missed heartbeats or its
 * deletion, the follower drops its ordered consumer and makes a new one starting after the
 * last event it printed (by stream sequence: nothing twice, nothing skipped that the stream
 * kept). While NATS is away it says so once on stderr. It exits non-zero saying why when
 * it cannot go on: the events stream is gone, or the connection closed for good.
 */
import type { Command } from 'commander';
import { formatBytes, parseDuration, UnavailableError } from '@vmferry/core';
import { EVENTS_STREAM, type Coordination, type VmferryEvent } from '@vmferry/nats';
import type { ConsumerMessages, OrderedConsumerOptions } from '@nats-io/jetstream';
import { globalsOf, withNats } from './coordination-shared.js';
import { printJson } from './output.js';

function line(e: VmferryEvent): string {
  const { kind, atMs, site, vmName, ...rest } = e;
  const extra = Object.entries(rest)
    .filter(([k]) => k !== 'vmId')
    .map(
      ([k, v]) =>
        `${k}=${typeof v === 'number' && /bytes/i.test(k) ? formatBytes(v) : typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v)}`,
    )
    .join(' ');
  return `${new Date(atMs).toISOString()}  ${kind.padEnd(20)} ${site ?? ''} ${vmName ?? ''} ${extra}\n`;
}

const messageOf = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Prints events from `startTime` on until SIGINT/SIGTERM, across reconnects (see the file comment). */
async function follow(c: Coordination, startTime: Date, print: (e: VmferryEvent) => void): Promise<void> {
  const { DeliverPolicy } = await import('@nats-io/jetstream');
  let lastSeq = 0;
  let stopped = false;
  let fatal: Error | undefined;
  let current: ConsumerMessages | undefined;
  const restart = (): void => void current?.close().catch(() => undefined);
  const stop = (): void => {
    stopped = true;
    restart();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  void (async () => {
    for await (const s of c.nc.status()) if (s.type === 'reconnect') restart();
  })();
  void c.nc.closed().then((e) => {
    if (!stopped) fatal = new UnavailableError(`the NATS connection closed${e ? `: ${e.message}` : ''}`, e ? { cause: e } : {});
    restart();
  });
  let waiting = false;
  // Read through functions: the signal handlers and the connection's callbacks change them.
  const going = (): boolean => !stopped && fatal === undefined;
  const isStopped = (): boolean => stopped;
  try {
    while (going()) {
      const opts: Partial<OrderedConsumerOptions> =
        lastSeq === 0
          ? { deliver_policy: DeliverPolicy.StartTime, opt_start_time: startTime.toISOString() }
          : { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: lastSeq + 1 };
      try {
        const messages = await (await c.js.consumers.get(EVENTS_STREAM, opts)).consume();
        current = messages;
        if (waiting) process.stderr.write('vmferry: events: following again\n');
        waiting = false;
        void (async () => {
          for await (const n of messages.status()) {
            const gone = n.type === 'consumer_deleted' || n.type === 'consumer_not_found' || n.type === 'stream_not_found';
            if (gone || (n.type === 'heartbeats_missed' && n.count >= 2)) messages.stop();
          }
        })().catch(() => undefined);
        if (isStopped()) messages.stop();
        for await (const m of messages) {
          if (m.seq <= lastSeq) continue;
          lastSeq = m.seq;
          print(m.json<VmferryEvent>());
        }
      } catch (e) {
        if (/stream not found/i.test(messageOf(e))) throw new UnavailableError(`the events stream ${EVENTS_STREAM} is gone (${messageOf(e)})`, { cause: e });
        if (!waiting) process.stderr.write(`vmferry: events: NATS unavailable (${messageOf(e)}); waiting for it\n`);
        waiting = true;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
  if (fatal) throw fatal;
}

export function registerEventsCommand(program: Command): void {
  program
    .command('events')
    .description('recent events (snapshots, replication, quiesce fallbacks, missed schedules, refused policies, dead letters)')
    .option('--follow', 'keep printing new events (across NATS restarts) until Ctrl-C')
    .option('--since <duration>', 'how far back to start', '1h')
    .action(async (o: { follow?: boolean; since: string }, cmd: Command) => {
      const g = globalsOf(cmd);
      const startTime = new Date(Date.now() - parseDuration(o.since));
      const { DeliverPolicy } = await import('@nats-io/jetstream');
      await withNats(g, async (c) => {
        if (o.follow) {
          await follow(c, startTime, (e) => process.stdout.write(g.json ? `${JSON.stringify(e)}\n` : line(e)));
          return;
        }
        const consumer = await c.js.consumers.get(EVENTS_STREAM, { deliver_policy: DeliverPolicy.StartTime, opt_start_time: startTime.toISOString() });
        const all: VmferryEvent[] = [];
        for (;;) {
          const m = await consumer.next({ expires: 1000 });
          if (!m) break;
          if (g.json) all.push(m.json<VmferryEvent>());
          else process.stdout.write(line(m.json<VmferryEvent>()));
        }
        if (g.json) printJson(all);
      });
    });
}
