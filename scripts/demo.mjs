#!/usr/bin/env node
// The demo: a storage node on a temp folder, a real partitioned ext4 VM disk imported,
// written to, snapshotted, cloned 100 times; one clone exported and checked by hash;
// space savings printed; the node stopped. Everything goes through the vmferry CLI.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import testkit from '@vmferry/testkit';

const { startNodeProcess, buildExtImage, makeContentTree, sha256File, VMFERRY_BIN } = testkit;
const work = mkdtempSync(join(tmpdir(), 'vmferry-demo-'));
const step = (text) => console.log(`\n\x1b[1m== ${text}\x1b[0m`);

function vmferry(node, ...args) {
  console.log(`$ vmferry ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [VMFERRY_BIN, '--node', node, ...args], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`vmferry ${args.join(' ')} failed with exit ${r.status}`);
}
function vmferryJson(node, ...args) {
  const r = spawnSync(process.execPath, [VMFERRY_BIN, '--node', node, '--json', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`vmferry ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

let node;
try {
  step(`starting a storage node on ${work}/data`);
  node = await startNodeProcess({ dataDir: join(work, 'data') });
  console.log(`storage node listening on ${node.address}`);

  step('building a VM disk with real tools: sfdisk (MBR, partition at sector 2048) + mkfs.ext4 -d');
  makeContentTree(join(work, 'content'), 'gold-image', 32);
  const image = join(work, 'gold.img');
  buildExtImage({ path: image, diskMiB: 256, startSector: 2048, contentDir: join(work, 'content'), workDir: join(work, 'fs') });
  console.log(spawnSync('sfdisk', ['-l', image], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).stdout);

  step('importing it as VM "gold"');
  vmferry(node.address, 'vm', 'import', 'gold', image);
  vmferry(node.address, 'snapshot', 'create', 'gold', '--label', 'base');

  step('writing to the live disk (1 MiB at an unaligned offset), then a second snapshot');
  const patch = join(work, 'patch.bin');
  writeFileSync(patch, createHash('sha512').update('patch').digest().toString('hex').repeat(8192).slice(0, 1024 * 1024));
  vmferry(node.address, 'disk', 'write', 'gold', '0', patch, '--offset', '70000123');
  vmferry(node.address, 'snapshot', 'create', 'gold', '--label', 'patched');
  vmferry(node.address, 'snapshot', 'list', 'gold');

  step('100 clones of gold@patched (VDI desktops): metadata only');
  vmferry(node.address, 'clone', 'gold@patched', 'desk', '--count', '100');

  step('exporting one clone and checking its hash against what was written');
  const expected = readFileSync(image);
  readFileSync(patch).copy(expected, 70000123);
  const want = createHash('sha256').update(expected).digest('hex');
  const out = join(work, 'desk-042.img');
  vmferry(node.address, 'disk', 'export', 'desk-042', '0', out);
  const got = await sha256File(out);
  console.log(`expected sha256 ${want}\nexported sha256 ${got}`);
  if (got !== want) throw new Error('exported clone does not match the written data');
  const base = join(work, 'base.img');
  vmferry(node.address, 'disk', 'export', 'gold@base', '0', base);
  if ((await sha256File(base)) !== (await sha256File(image))) throw new Error('gold@base does not match the imported image');
  console.log('gold@base is hash-equal to the imported image; desk-042 to the patched one: OK');

  step('space savings');
  vmferry(node.address, 'stats', 'gold');
  const s = vmferryJson(node.address, 'stats');
  const gb = (n) => `${(n / 2 ** 30).toFixed(2)} GiB`;
  console.log(`\n${s.vmCount} VMs, ${s.snapshotCount} snapshots: ${gb(s.logicalBytes)} logical stored in ${(s.storedBytes / 2 ** 20).toFixed(1)} MiB (${s.totalRatio}x)`);
} finally {
  if (node) {
    step('stopping the storage node');
    console.log(`exit code ${await node.stop()}`);
  }
  rmSync(work, { recursive: true, force: true });
}
