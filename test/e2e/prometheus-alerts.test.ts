/**
 * The shipped alert rules against a real run: Debian's `prometheus` scrapes two sites on
 * loopback (nats-server, storage nodes A and B, a scheduler, B's replicator; a policy taking a
 * snapshot every 5 s, replicated to B with a 20 s RPO). Stopping the replicator cuts
 * replication: A's newest-replica age passes the RPO the scheduler exports and
 * VmferryRpoBreach fires (read from /api/v1/alerts); starting it again clears it.
 *
 * Test-only timings: a copy of rules.yml with every `for:` set to 0s, scrapes and rule
 * evaluations every second. The expressions are the shipped ones, unchanged.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cliJson,
  freePort,
  mintCerts,
  runCli,
  seededBytes,
  startNatsServer,
  startNodeProcess,
  VMFERRY_BIN,
  writeDisk,
  type NatsServer,
  type NodeProcess,
} from '@vmferry/testkit';

const RULES = join(__dirname, '..', '..', '..', 'deploy', 'prometheus', 'rules.yml');
const RPO_S = 20;

interface Service {
  readonly child: ChildProcess;
  log(): string;
  stop(): Promise<void>;
}

/** A vmferry service process (scheduler, replicator); resolves once `ready` appears on stderr. */
async function startService(args: readonly string[], ready: RegExp): Promise<Service> {
  const child = spawn(process.execPath, [VMFERRY_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`vmferry ${args.join(' ')} not ready in 20 s:\n${log}`)), 20_000);
    child.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
      if (ready.test(log)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`vmferry ${args.join(' ')} exited with ${code}:\n${log}`));
    });
  });
  const exited = once(child, 'exit');
  return {
    child,
    log: () => log,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}

interface PromAlert {
  readonly labels: Readonly<Record<string, string>>;
  readonly state: string;
}

/** Polls `probe` every 500 ms until it returns a value, or fails after `ms` with `what`. */
async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${ms} ms waiting for ${what}${last === undefined ? '' : `: ${last instanceof Error ? last.message : JSON.stringify(last)}`}`,
      );
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('alert rules on a real Prometheus scraping two sites', () => {
  let dir = '';
  let certs = '';
  let nats: NatsServer | undefined;
  let a: NodeProcess | undefined;
  let b: NodeProcess | undefined;
  let scheduler: Service | undefined;
  let replicator: Service | undefined;
  let prometheus: Service | undefined;
  let promUrl = '';
  let replicatorMetrics = '';

  const startReplicator = (): Promise<Service> =>
    startService(
      ['--node', b?.address ?? '', '--nats', nats?.url ?? '', 'replicator', '--site', 'siteB', '--certs', certs, '--metrics-listen', replicatorMetrics],
      /prometheus metrics on http:/,
    );

  const alerts = async (): Promise<PromAlert[]> => {
    const r = (await (await fetch(`${promUrl}/api/v1/alerts`)).json()) as { data: { alerts: PromAlert[] } };
    return r.data.alerts;
  };
  const rpoBreach = async (): Promise<PromAlert | undefined> =>
    (await alerts()).find((x) => x.labels['alertname'] === 'VmferryRpoBreach' && x.labels['vm'] === 'web' && x.state === 'firing');
  const query = async (q: string): Promise<number[]> => {
    const r = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { data: { result: { value: [number, string] }[] } };
    return r.data.result.map((x) => Number(x.value[1]));
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-prom-alerts-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB']);
    nats = await startNatsServer();
    const [ma, mb, ms, mr, mp] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    replicatorMetrics = `127.0.0.1:${mr}`;
    const tls = (site: string): string[] => [
      '--tls-cert',
      join(certs, `${site}.crt`),
      '--tls-key',
      join(certs, `${site}.key`),
      '--tls-ca',
      join(certs, 'ca.crt'),
    ];
    a = await startNodeProcess({
      dataDir: join(dir, 'a'),
      extraArgs: ['--site', 'siteA', '--nats', nats.url, '--replication-listen', '127.0.0.1:0', ...tls('siteA'), '--metrics-listen', `127.0.0.1:${ma}`],
    });
    b = await startNodeProcess({ dataDir: join(dir, 'b'), extraArgs: ['--site', 'siteB', '--nats', nats.url, '--metrics-listen', `127.0.0.1:${mb}`] });
    await cliJson(a.address, ['site', 'add', 'siteB', '--identity', 'siteB']);
    await cliJson(b.address, ['site', 'add', 'siteA', '--replication', a.replicationAddress ?? '', '--identity', 'siteA']);
    const policy = { schedules: [{ name: 'fast', every: '5s', keep: 4 }], replication: [{ site: 'siteB', keep: 3, rpo: `${RPO_S}s` }] };
    const set = await runCli(a.address, ['--nats', nats.url, 'policy', 'set-default', JSON.stringify(policy)]);
    assert.equal(set.code, 0, set.stderr);
    scheduler = await startService(['--nats', nats.url, 'scheduler', '--metrics-listen', `127.0.0.1:${ms}`], /running against/);
    replicator = await startReplicator();
    await cliJson(a.address, ['vm', 'create', 'web', '--disk', '8M']);
    await writeDisk(a.address, 'web', 0, seededBytes('prometheus-alerts', 1024 * 1024));

    // The shipped rules, every `for:` shortened; the same expressions.
    const rules = readFileSync(RULES, 'utf8').replace(/^(\s+)for: \S+$/gm, '$1for: 0s');
    assert.notEqual(rules, readFileSync(RULES, 'utf8'));
    writeFileSync(join(dir, 'rules.yml'), rules);
    const target = (port: number, site: string): string => `{ targets: ['127.0.0.1:${port}'], labels: { vmferry_site: ${site} } }`;
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        'rule_files: [rules.yml]',
        'scrape_configs:',
        `  - { job_name: vmferry-node, static_configs: [${target(ma, 'siteA')}, ${target(mb, 'siteB')}] }`,
        `  - { job_name: vmferry-replicator, static_configs: [${target(mr, 'siteB')}] }`,
        `  - { job_name: vmferry-scheduler, static_configs: [${target(ms, 'siteA')}] }`,
        '',
      ].join('\n'),
    );
    mkdirSync(join(dir, 'tsdb'));
    const promBin = process.env['VMFERRY_PROMETHEUS_BIN'] ?? 'prometheus';
    prometheus = await (async () => {
      const child = spawn(
        promBin,
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'tsdb')}`,
          `--web.listen-address=127.0.0.1:${mp}`,
          '--log.level=warn',
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let log = '';
      child.stderr.on('data', (d: Buffer) => (log += d.toString()));
      // Not installed: say so (scripts/setup.mjs installs Debian's prometheus) rather than crash.
      child.once('error', (e) => (log += `cannot run ${promBin} (apt-get install prometheus): ${e.message}`));
      const exited = once(child, 'exit');
      return {
        child,
        log: () => log,
        stop: async () => {
          if (child.exitCode !== null || child.signalCode !== null) return;
          child.kill('SIGTERM');
          await exited;
        },
      };
    })();
    promUrl = `http://127.0.0.1:${mp}`;
    await until('Prometheus ready', 30_000, async () => {
      assert.equal(prometheus?.child.exitCode ?? null, null, `prometheus exited:\n${prometheus?.log() ?? ''}`);
      return (await fetch(`${promUrl}/-/ready`)).ok ? true : undefined;
    });
  });

  after(async () => {
    await prometheus?.stop();
    await replicator?.stop();
    await scheduler?.stop();
    await a?.stop();
    await b?.stop();
    await nats?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('every target is up and the metrics arrive: leader, RPO, replica age, sessions, jobs', async () => {
    await until('all four targets up', 30_000, async () => {
      const up = await query('up');
      return up.length === 4 && up.every((v) => v === 1) ? true : undefined;
    });
    assert.deepEqual(await query('vmferry_scheduler_leader'), [1]);
    await until('the RPO series for web', 30_000, async () => {
      const v = await query('vmferry_replica_rpo_seconds{site="siteA",vm="web",target="siteB"}');
      return v.length === 1 ? v : undefined;
    }).then((v) => assert.deepEqual(v, [RPO_S]));
    // A scheduled snapshot reached B: the source knows B's newest copy, and its age is within the RPO.
    const age = await until('a replica of web at siteB', 60_000, async () => {
      const v = await query('vmferry_replica_newest_age_seconds{site="siteA",vm="web",target="siteB"}');
      return v.length === 1 ? v[0] : undefined;
    });
    assert.ok(age !== undefined && age < RPO_S, `age ${age}`);
    assert.ok(((await query('vmferry_replication_sessions_total{outcome="done",link="siteA->siteB"}'))[0] ?? 0) >= 1);
    assert.ok(((await query('sum(vmferry_jobs_published_total{kind="snapshot",site="siteA"})'))[0] ?? 0) >= 1);
    // 1 MiB of random data written at A reaches B: logical bytes count it, wire bytes too.
    await until('1 MiB of logical bytes replicated', 60_000, async () => {
      const v = await query('vmferry_replication_logical_bytes_total{link="siteA->siteB"}');
      return (v[0] ?? 0) >= 1024 * 1024 ? true : undefined;
    });
    assert.ok(((await query('vmferry_replication_received_bytes_total{link="siteA->siteB"}'))[0] ?? 0) > 0);
    assert.ok(((await query('sum(vmferry_jobs_done_total{kind="replicate",site="siteB"})'))[0] ?? 0) >= 1);
    assert.equal(await rpoBreach(), undefined);
  });

  test('cutting replication fires VmferryRpoBreach; restoring it clears the alert', async () => {
    await replicator?.stop();
    const fired = await until('VmferryRpoBreach firing', 90_000, rpoBreach);
    assert.deepEqual(
      { site: fired.labels['site'], target: fired.labels['target'], severity: fired.labels['severity'] },
      { site: 'siteA', target: 'siteB', severity: 'critical' },
    );
    const [late] = await query('vmferry_replica_newest_age_seconds{vm="web"}');
    assert.ok(late !== undefined && late > RPO_S, `age ${late}`);

    replicator = await startReplicator();
    // The jobs queued while it was down are consumed; the newest copy's age falls under the RPO.
    await until('VmferryRpoBreach cleared', 90_000, async () => ((await rpoBreach()) === undefined ? true : undefined));
    const [fresh] = await query('vmferry_replica_newest_age_seconds{vm="web"}');
    assert.ok(fresh !== undefined && fresh <= RPO_S, `age ${fresh}`);
  });
});
