/*
 * npm run bench:replication — bytes on the wire for an incremental replication of a changed
 * copy of a gold image (gold at both sites; vm1 = a clone of gold at A, then rewritten with
 * the image of the same filesystem after "package installs": new binaries, grown logs,
 * edited configs). Compares vmferry's stored-form transfer (compressed chunks), its packed
 * transfer (page references + one zstd frame per batch) and `rsync --compress` (zstd) of
 * vm1's image against gold's. Prints a table; writes loadtest/reports/bench-replication-*.json.
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, appendFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildExtImage, cliJson, makeContentTree, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { writeReport } from './report.js';

const REPO = join(__dirname, '..', '..', '..');
const MiB = 1024 * 1024;

function pseudoRandom(seed: string, n: number): Buffer {
  const parts: Buffer[] = [];
  let h = createHash('sha256').update(seed).digest();
  for (let have = 0; have < n; have += 32) {
    h = createHash('sha256').update(h).digest();
    parts.push(h);
  }
  return Buffer.concat(parts).subarray(0, n);
}

/** The gold tree after "apt installs": new libraries, grown logs, edited configs. */
function changeTree(dir: string): void {
  mkdirSync(join(dir, 'usr', 'lib', 'new'), { recursive: true });
  for (let i = 0; i < 6; i++) writeFileSync(join(dir, 'usr', 'lib', 'new', `pkg${i}.so`), pseudoRandom(`pkg${i}`, 1536 * 1024));
  for (let i = 0; i < 6; i++) {
    const text = Array.from({ length: 4000 }, (_, k) => `/usr/share/doc/pkg${i}/file${k} installed by apt ${i}.${k}\n`).join('');
    writeFileSync(join(dir, 'usr', 'lib', 'new', `pkg${i}.list`), text);
  }
  appendFileSync(
    join(dir, 'var', 'log', 'syslog'),
    Array.from({ length: 20000 }, (_, k) => `2026-11-26T08:00:${String(k % 60).padStart(2, '0')} host apt: unpacking package ${k}\n`).join(''),
  );
  for (const f of readdirSync(join(dir, 'etc')).slice(0, 20)) appendFileSync(join(dir, 'etc', f), 'updated=1\n');
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'vmferry-bench-repl-'));
  const certs = join(work, 'certs');
  execFileSync(join(REPO, 'deploy', 'mint-certs.sh'), [certs, 'siteA', 'siteB', 'siteC'], { stdio: 'ignore' });
  const tls = (s: string): string[] => ['--tls-cert', join(certs, `${s}.crt`), '--tls-key', join(certs, `${s}.key`), '--tls-ca', join(certs, 'ca.crt')];
  const nodes: NodeProcess[] = [];
  try {
    const gold = join(work, 'gold');
    makeContentTree(gold, 'gold', 96);
    const vm1 = join(work, 'vm1');
    cpSync(gold, vm1, { recursive: true });
    changeTree(vm1);
    const goldImg = join(work, 'gold.img');
    const vm1Img = join(work, 'vm1.img');
    buildExtImage({ path: goldImg, diskMiB: 512, startSector: 2048, contentDir: gold, workDir: join(work, 'fs-gold') });
    buildExtImage({ path: vm1Img, diskMiB: 512, startSector: 2048, contentDir: vm1, workDir: join(work, 'fs-vm1') });

    const a = await startNodeProcess({ dataDir: join(work, 'a'), extraArgs: ['--site', 'siteA', '--replication-listen', '127.0.0.1:0', ...tls('siteA')] });
    const b = await startNodeProcess({ dataDir: join(work, 'b'), extraArgs: ['--site', 'siteB'] });
    const c = await startNodeProcess({ dataDir: join(work, 'c'), extraArgs: ['--site', 'siteC'] });
    nodes.push(a, b, c);
    await cliJson(a.address, ['site', 'add', 'siteB', '--identity', 'siteB']);
    await cliJson(a.address, ['site', 'add', 'siteC', '--identity', 'siteC']);
    for (const t of [b, c]) await cliJson(t.address, ['site', 'add', 'siteA', '--replication', a.replicationAddress ?? '', '--identity', 'siteA']);

    await cliJson(a.address, ['vm', 'import', 'gold', goldImg]);
    await cliJson(a.address, ['snapshot', 'create', 'gold', '--label', 's1']);
    await cliJson(a.address, ['clone', 'gold@s1', 'vm1']);
    await cliJson(a.address, ['disk', 'write', 'vm1', '0', vm1Img]);
    await cliJson(a.address, ['snapshot', 'create', 'vm1', '--label', 's1']);
    for (const [t, site] of [
      [b, 'siteB'],
      [c, 'siteC'],
    ] as const) {
      await cliJson(t.address, ['replicate', 'gold@s1', '--from', 'siteA', '--to', site, '--certs', certs]);
    }

    // Stored form at B (the packed transfer is bypassed by the VM having no base only via the
    // plan: the plan's totalBytes is exactly what the stored-form transfer moves).
    const plan = await cliJson<{ totalBytes: number; missingChunks: number }>(b.address, [
      'replicate',
      'plan',
      'vm1@s1',
      '--from',
      'siteA',
      '--to',
      'siteB',
      '--certs',
      certs,
    ]);
    const packed = await cliJson<{ bytesReceived: number; packed: boolean; basePages: number; seconds: number }>(c.address, [
      'replicate',
      'vm1@s1',
      '--from',
      'siteA',
      '--to',
      'siteC',
      '--certs',
      certs,
    ]);

    const dst = join(work, 'rsync-dst');
    mkdirSync(dst);
    cpSync(goldImg, join(dst, 'disk.img'));
    const stats = execFileSync('rsync', ['--no-whole-file', '--inplace', '--compress', '--compress-choice=zstd', '--stats', vm1Img, join(dst, 'disk.img')], {
      encoding: 'utf8',
    });
    const sent = Number(/Total bytes sent: ([\d,.]+)/.exec(stats)?.[1]?.replace(/[,.]/g, '') ?? NaN);

    const rows: [string, number][] = [
      ['changed chunks (64 KiB) vm1 adds over gold', plan.missingChunks],
      ['vmferry stored form (per-chunk zstd), bytes', plan.totalBytes],
      ['vmferry packed (page refs + batch zstd), bytes', packed.bytesReceived],
      ['rsync --compress (zstd) of the image, bytes sent', sent],
    ];
    console.log(`\n${'measure'.padEnd(50)}  result`);
    for (const [k, v] of rows) console.log(`${k.padEnd(50)}  ${k.includes('bytes') ? `${(v / MiB).toFixed(2)} MiB` : v}`);
    console.log(
      `packed / stored = ${(packed.bytesReceived / plan.totalBytes).toFixed(2)}, packed / rsync = ${(packed.bytesReceived / sent).toFixed(2)}, base pages indexed: ${packed.basePages}`,
    );
    const file = writeReport('bench-replication', { node: process.version, results: Object.fromEntries(rows) });
    console.log(`report: ${file}`);
  } finally {
    for (const n of nodes) await n.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
