/*
 * npm run bench:files — file-level restore on a 2 GiB ext4 disk (mkfs.ext4 -d of a copy of
 * this machine's /usr/share/doc plus large files), imported into a real node process and
 * snapshotted, beside debugfs reading the same raw image in the same run: listing a
 * directory, copying out one file (bytes read from the node against its size) and a whole
 * folder. vmferry is timed as the installed command (node packages/cli/bin/vmferry.js, not
 * npx); both tools start a process per operation.
 * Prints a table and writes loadtest/reports/bench-files-<time>.json.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildExtImage, runCli, seededBytes, startNodeProcess } from '@vmferry/testkit';
import { resultRecorder, writeReport } from './report.js';

const MiB = 1024 * 1024;
const DISK_MIB = 2048;
const work = mkdtempSync(join(tmpdir(), 'vmferry-bench-files-'));
const PATH = `${process.env['PATH'] ?? ''}:/usr/sbin:/sbin`;
const { results, rows, record } = resultRecorder();

interface Stats {
  bytesFetched: number;
  storeBytes: number;
  calls: number;
  milliseconds: number;
}

async function cli(node: string, args: readonly string[]): Promise<{ doc: { stats?: Stats }; seconds: number }> {
  const t = performance.now();
  const r = await runCli(node, ['--json', ...args]);
  const secs = (performance.now() - t) / 1000;
  if (r.code !== 0) throw new Error(`vmferry ${args.join(' ')} failed: ${r.stderr}`);
  return { doc: JSON.parse(r.stdout) as { stats?: Stats }, seconds: secs };
}

function debugfs(image: string, cmd: string): number {
  const t = performance.now();
  execFileSync('debugfs', ['-R', cmd, `${image}?offset=${2048 * 512}`], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, PATH } });
  return (performance.now() - t) / 1000;
}

function content(dir: string): void {
  mkdirSync(join(dir, 'usr', 'share'), { recursive: true });
  cpSync('/usr/share/doc', join(dir, 'usr', 'share', 'doc'), { recursive: true, verbatimSymlinks: true, dereference: false });
  mkdirSync(join(dir, 'var', 'lib', 'big'), { recursive: true });
  writeFileSync(join(dir, 'var', 'lib', 'big', 'one-mib.bin'), seededBytes('one', MiB));
  writeFileSync(join(dir, 'var', 'lib', 'big', 'db.bin'), seededBytes('db', 200 * MiB));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc', 'hostname'), 'bench\n');
}

async function main(): Promise<void> {
  console.error(`vmferry file-level restore benchmark (work dir ${work}, ${DISK_MIB} MiB disk)`);
  const tree = join(work, 'tree');
  content(tree);
  const image = join(work, 'vm.img');
  buildExtImage({ path: image, diskMiB: DISK_MIB, startSector: 2048, contentDir: tree, workDir: join(work, 'fs') });
  rmSync(tree, { recursive: true, force: true });
  const node = await startNodeProcess({ dataDir: join(work, 'data') });
  try {
    await cli(node.address, ['vm', 'import', 'vm', image]);
    await cli(node.address, ['snapshot', 'create', 'vm', '--label', 's']);
    const doc = '/usr/share/doc';
    const entries = (await cli(node.address, ['files', 'ls', 'vm@s', doc])).doc as unknown as { entries: unknown[] };
    const ls = await cli(node.address, ['files', 'ls', 'vm@s', doc, '--long']);
    record(`ls -l ${doc} (${entries.entries.length} entries): vmferry wall`, ls.seconds, 's', 'process start included');
    record(
      `ls -l ${doc}: vmferry inside the command`,
      (ls.doc.stats?.milliseconds ?? 0) / 1000,
      's',
      `${((ls.doc.stats?.bytesFetched ?? 0) / MiB).toFixed(2)} MiB read, ${ls.doc.stats?.calls ?? 0} calls`,
    );
    record(`ls -l ${doc}: debugfs (raw image)`, debugfs(image, `ls -l ${doc}`), 's');
    for (const [name, size] of [
      ['/var/lib/big/one-mib.bin', MiB],
      ['/var/lib/big/db.bin', 200 * MiB],
      ['/etc/hostname', 6],
    ] as const) {
      const dest = join(work, `got-${size}`);
      const got = await cli(node.address, ['files', 'get', 'vm@s', name, dest]);
      const fetched = got.doc.stats?.bytesFetched ?? 0;
      const store = got.doc.stats?.storeBytes ?? 0;
      record(
        `get ${name}: vmferry wall`,
        got.seconds,
        's',
        `${fetched} bytes read for ${size} (${(fetched / size).toFixed(2)}x); vDisk blocks touched ${store} bytes`,
      );
      record(`get ${name}: debugfs dump`, debugfs(image, `dump ${name} ${dest}.debugfs`), 's');
    }
    const rdump = join(work, 'rdump');
    mkdirSync(rdump);
    const all = await cli(node.address, ['files', 'get', 'vm@s', doc, join(work, 'doc')]);
    const allDoc = all.doc as unknown as { files: number; bytes: number };
    record(
      `get -r ${doc} (${allDoc.files} files, ${(allDoc.bytes / MiB).toFixed(1)} MiB): vmferry wall`,
      all.seconds,
      's',
      `${((all.doc.stats?.bytesFetched ?? 0) / MiB).toFixed(1)} MiB read`,
    );
    record(`get -r ${doc}: debugfs rdump`, debugfs(image, `rdump ${doc} ${rdump}`), 's');
  } finally {
    await node.stop();
  }
  const imageData = statSync(image).blocks * 512;
  const doc = {
    disk: `${DISK_MIB} MiB`,
    imageDataMiB: Math.round(imageData / MiB),
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
    results,
  };
  console.log(`\nfile-level restore, ${DISK_MIB} MiB ext4 disk (${(imageData / MiB).toFixed(0)} MiB allocated), load ${doc.loadavg}`);
  const w = Math.max(...rows.map((r) => r[0].length));
  for (const [k, v, note] of rows) console.log(`${k.padEnd(w)}  ${v.padStart(10)}  ${note}`);
  console.log(`report: ${writeReport('bench-files', doc)}`);
  rmSync(work, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  rmSync(work, { recursive: true, force: true });
  process.exitCode = 1;
});
