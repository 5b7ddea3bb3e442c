#!/usr/bin/env node
// The demo, through the vmferry CLI and real processes:
//   1. a storage node: a real partitioned ext4 VM disk imported, written, snapshotted, cloned
//      100 times; a clone exported and hash-checked; a clone served over NBD (qemu-img info,
//      guest-style 4 KiB writes with qemu-io, a snapshot of it read back with nbdcopy and
//      hash-checked); space savings.
//   2. the two-site DR story: NATS per site (A the JetStream hub, B a leaf node), storage
//      nodes at A and B (mTLS replication endpoint at A), a scheduler and B's replicator; a VM
//      at A protected by the default policy (a snapshot every 5 s, replicated to B); writes
//      between snapshots; snapshots at A and replicas at B with the bytes each one sent; B's
//      newest replica exported hash-equal to A's; then a planned failover of the VM to B (A
//      fenced, B writable over NBD at once), a write at B, and a failback to A that moves only
//      what changed. Then everything shuts down.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import testkit from '@vmferry/testkit';

const { startNodeProcess, startNatsServer, freePort, buildExtImage, makeContentTree, sha256File, VMFERRY_BIN } = testkit;
const work = mkdtempSync(join(tmpdir(), 'vmferry-demo-'));
const step = (text) => console.log(`\n\x1b[1m== ${text}\x1b[0m`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const DOMAIN = 'vmferry';
const env = { ...process.env, VMFERRY_JS_DOMAIN: DOMAIN };

function vmferry(node, ...args) {
  console.log(`$ vmferry ${args.join(' ')}`);
  const r = spawnSync(process.execPath, [VMFERRY_BIN, '--node', node, ...args], { stdio: ['ignore', 'inherit', 'inherit'], env });
  if (r.status !== 0) throw new Error(`vmferry ${args.join(' ')} failed with exit ${r.status}`);
}
function vmferryJson(node, ...args) {
  const r = spawnSync(process.execPath, [VMFERRY_BIN, '--node', node, '--json', ...args], { encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`vmferry ${args.join(' ')} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
function service(name, args) {
  const child = spawn(process.execPath, [VMFERRY_BIN, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let log = '';
  child.stderr.on('data', (d) => (log += d));
  return { name, child, log: () => log, stop: () => new Promise((r) => (child.exitCode !== null ? r() : (child.once('exit', r), child.kill('SIGTERM')))) };
}

const stoppers = [];
try {
  // ---------------------------------------------------------------- part 1: one storage node
  step(`starting a storage node on ${work}/data`);
  const nbdSocket = join(work, 'nbd.sock');
  const node = await startNodeProcess({ dataDir: join(work, 'data'), extraArgs: ['--nbd-socket', nbdSocket] });
  stoppers.push(() => node.stop());
  console.log(`storage node listening on ${node.address}, NBD on unix:${nbdSocket}`);

  step('building a VM disk with real tools: sfdisk (MBR, partition at sector 2048) + mkfs.ext4 -d');
  makeContentTree(join(work, 'content'), 'gold-image', 32);
  const image = join(work, 'gold.img');
  buildExtImage({ path: image, diskMiB: 256, startSector: 2048, contentDir: join(work, 'content'), workDir: join(work, 'fs') });
  console.log(spawnSync('sfdisk', ['-l', image], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).stdout);

  step('importing it as VM "gold", writing 1 MiB at an unaligned offset, snapshotting');
  vmferry(node.address, 'vm', 'import', 'gold', image);
  vmferry(node.address, 'snapshot', 'create', 'gold', '--label', 'base');
  const patch = join(work, 'patch.bin');
  writeFileSync(
    patch,
    createHash('sha512')
      .update('patch')
      .digest()
      .toString('hex')
      .repeat(8192)
      .slice(0, 1024 * 1024),
  );
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
  console.log('desk-042 is hash-equal to the written data: OK');

  step('serving clone desk-007 over NBD, as a hypervisor would attach it');
  const nbdUrl = (name) => `nbd+unix:///${name}?socket=${nbdSocket}`;
  const tool = (cmd, args) => {
    console.log(`$ ${cmd} ${args.join(' ')}`);
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
    process.stdout.write(r.stdout);
    return r.stdout;
  };
  tool('qemu-img', ['info', '--output=human', nbdUrl('desk-007/0')]);
  // A guest's small random writes: 4 KiB pages at scattered offsets, each landing in the page overlay.
  const pattern = [];
  for (let i = 0; i < 8; i++) pattern.push('-c', `write -P ${0x41 + i} ${(i * 7919 + 13) * 4096} 4096`);
  tool('qemu-io', ['-f', 'raw', ...pattern, nbdUrl('desk-007/0')]);
  vmferry(node.address, 'snapshot', 'create', 'desk-007', '--label', 'after-io');
  const viaNbd = join(work, 'desk-007-after-io.img');
  tool('nbdcopy', [nbdUrl('desk-007@after-io/0'), viaNbd]);
  const expectedDesk = Buffer.from(expected);
  for (let i = 0; i < 8; i++) expectedDesk.fill(0x41 + i, (i * 7919 + 13) * 4096, (i * 7919 + 14) * 4096);
  const wantDesk = createHash('sha256').update(expectedDesk).digest('hex');
  const gotDesk = await sha256File(viaNbd);
  console.log(`expected sha256 ${wantDesk}\nsnapshot sha256 ${gotDesk} (read over NBD)`);
  if (gotDesk !== wantDesk) throw new Error('the snapshot of desk-007 does not hold exactly the writes made over NBD');
  vmferry(node.address, 'disk', 'export', 'desk-042', '0', out);
  if ((await sha256File(out)) !== want) throw new Error('another clone changed');
  console.log('desk-007@after-io holds exactly the NBD writes; desk-042, a clone of the same image, is unchanged: OK');

  step('space savings');
  vmferry(node.address, 'stats', 'gold');
  const s = vmferryJson(node.address, 'stats');
  console.log(
    `\n${s.vmCount} VMs, ${s.snapshotCount} snapshots: ${(s.logicalBytes / 2 ** 30).toFixed(2)} GiB logical stored in ${(s.storedBytes / 2 ** 20).toFixed(1)} MiB (${s.totalRatio}x)`,
  );
  await node.stop();
  stoppers.pop();

  // ---------------------------------------------------------------- part 2: two-site DR
  step('two sites: NATS at A (JetStream hub) and B (leaf node), certificates for both sites');
  const leafPort = await freePort();
  const natsA = await startNatsServer({ name: 'site-a', domain: DOMAIN, config: `leafnodes { listen: 127.0.0.1:${leafPort} }` });
  stoppers.push(() => natsA.stop());
  const natsB = await startNatsServer({ name: 'site-b', jetstream: false, config: `leafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:${leafPort}" } ] }` });
  stoppers.push(() => natsB.stop());
  await sleep(1000); // the leaf connection
  console.log(`NATS site A ${natsA.url} (hub), site B ${natsB.url} (leaf)`);
  const certs = join(work, 'certs');
  execFileSync(join(process.cwd(), 'deploy', 'mint-certs.sh'), [certs, 'siteA', 'siteB'], { stdio: 'inherit' });
  const tls = (site) => ['--tls-cert', join(certs, `${site}.crt`), '--tls-key', join(certs, `${site}.key`), '--tls-ca', join(certs, 'ca.crt')];

  step('storage nodes: site A (replication endpoint, mTLS) and site B');
  const a = await startNodeProcess({
    dataDir: join(work, 'a'),
    env,
    extraArgs: ['--site', 'siteA', '--nats', natsA.url, '--replication-listen', '127.0.0.1:0', ...tls('siteA'), '--nbd-socket', join(work, 'a.nbd')],
  });
  stoppers.push(() => a.stop());
  const b = await startNodeProcess({
    dataDir: join(work, 'b'),
    env,
    extraArgs: ['--site', 'siteB', '--nats', natsB.url, '--replication-listen', '127.0.0.1:0', ...tls('siteB'), '--nbd-socket', join(work, 'b.nbd')],
  });
  stoppers.push(() => b.stop());
  console.log(`site A node ${a.address}, replication endpoint ${a.replicationAddress}; site B node ${b.address}, replication endpoint ${b.replicationAddress}`);
  // Each site knows the other: its replication endpoint (mTLS), its certificate name, and its
  // API address (failover and failback drive both nodes).
  vmferry(a.address, 'site', 'add', 'siteB', '--replication', b.replicationAddress, '--identity', 'siteB', '--node-address', b.address);
  vmferry(b.address, 'site', 'add', 'siteA', '--replication', a.replicationAddress, '--identity', 'siteA', '--node-address', a.address);

  step('the default policy: a snapshot every 5 s (keep 4), replicated to site B (keep 3, RPO 30 s)');
  vmferry(
    a.address,
    '--nats',
    natsA.url,
    'policy',
    'set-default',
    JSON.stringify({ schedules: [{ name: 'fast', every: '5s', keep: 4 }], replication: [{ site: 'siteB', keep: 3, rpo: '30s' }] }),
  );

  step("a scheduler (at A) and site B's replicator");
  const scheduler = service('scheduler', ['--nats', natsA.url, 'scheduler']);
  stoppers.push(() => scheduler.stop());
  const replicator = service('replicator', ['--node', b.address, '--nats', natsB.url, 'replicator', '--site', 'siteB', '--certs', certs]);
  stoppers.push(() => replicator.stop());

  step('importing VM "web" at site A: the default policy protects it from now on');
  vmferry(a.address, 'vm', 'import', 'web', image);

  const seen = new Set();
  for (let round = 1; round <= 3; round++) {
    step(`round ${round}: writing 2 MiB to web's live disk at A, waiting for the next snapshot and its replica`);
    const data = join(work, `w${round}.bin`);
    writeFileSync(data, randomBytes(2 * 1024 * 1024));
    vmferry(a.address, 'disk', 'write', 'web', '0', data, '--offset', String(round * 16 * 1024 * 1024 + 4097));
    const written = Date.now();
    let done;
    for (let i = 0; i < 60 && !done; i++) {
      await sleep(500);
      // The first replica of a snapshot taken after the write.
      const after = new Set(
        vmferryJson(a.address, 'snapshot', 'list', 'web')
          .filter((x) => x.createdAtMs >= written)
          .map((x) => x.id),
      );
      const events = vmferryJson(a.address, '--nats', natsA.url, 'events', '--since', '5m');
      done = events.find((e) => e.kind === 'replication.done' && e.vmName === 'web' && after.has(e.snapshotId) && !seen.has(e.snapshotId));
      if (done) seen.add(done.snapshotId);
    }
    if (!done) throw new Error('no replicated snapshot within 30 s');
    console.log(
      `snapshot ${done.snapshotId} replicated to site B: ${(done.bytesReceived / 1024).toFixed(0)} KiB sent, ${done.chunksReceived} chunks, ${done.chunksSkipped} already there, ${done.seconds.toFixed(2)} s`,
    );
  }

  step('snapshots at A, replicas at B');
  vmferry(a.address, 'snapshot', 'list', 'web');
  vmferry(b.address, 'snapshot', 'list', 'web');
  vmferry(a.address, '--nats', natsA.url, 'status');

  step("checking B's newest replica against A's copy of the same snapshot");
  const replicas = vmferryJson(b.address, 'snapshot', 'list', 'web');
  const newest = replicas[replicas.length - 1];
  const fa = join(work, 'web-a.img');
  const fb = join(work, 'web-b.img');
  vmferry(a.address, 'disk', 'export', `web@${newest.id}`, '0', fa);
  vmferry(b.address, 'disk', 'export', `web@${newest.id}`, '0', fb);
  const [ha, hb] = [await sha256File(fa), await sha256File(fb)];
  console.log(`site A sha256 ${ha}\nsite B sha256 ${hb}`);
  if (ha !== hb) throw new Error("B's replica differs from A's snapshot");
  console.log("B's replica is hash-equal to A's snapshot: OK");

  step('planned failover of web to site B: a final snapshot at A, replicated, A fenced, B promoted');
  const finalA = join(work, 'web-final-a.img');
  writeFileSync(join(work, 'late.bin'), randomBytes(1024 * 1024));
  vmferry(a.address, 'disk', 'write', 'web', '0', join(work, 'late.bin'), '--offset', String(100 * 1024 * 1024)); // not in any replica yet
  vmferry(a.address, 'disk', 'export', 'web', '0', finalA);
  const started = Date.now();
  vmferry(b.address, 'failover', 'web', '--to', 'siteB', '--planned', '--certs', certs);
  const io = spawnSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 4096', `nbd+unix:///web/0?socket=${join(work, 'b.nbd')}`], { encoding: 'utf8' });
  if (io.status !== 0) throw new Error(`web is not writable at B over NBD: ${io.stderr}`);
  console.log(
    `web is writable over NBD at site B ${((Date.now() - started) / 1000).toFixed(1)} s after the failover command started (a 4 KiB guest write acknowledged)`,
  );
  const atB = join(work, 'web-at-b.img');
  vmferry(b.address, 'disk', 'export', 'web', '0', atB);
  const expectedAtB = readFileSync(finalA);
  expectedAtB.fill(0x5a, 0, 4096);
  if ((await sha256File(atB)) !== createHash('sha256').update(expectedAtB).digest('hex')) throw new Error("B's promoted copy lost a write");
  console.log("B's live disk is A's last state plus B's write: nothing acknowledged at A was lost: OK");
  const refused = spawnSync(process.execPath, [VMFERRY_BIN, '--node', a.address, 'disk', 'write', 'web', '0', join(work, 'late.bin')], {
    encoding: 'utf8',
    env,
  });
  if (refused.status === 0) throw new Error("A's fenced copy accepted a write");
  console.log(`$ vmferry disk write web … at site A\n${refused.stderr.trim()}`);
  vmferry(a.address, 'vm', 'show', 'web');

  step('failback: web returns to site A; only what changed at B crosses the link');
  vmferry(a.address, 'failback', 'web', '--certs', certs);
  const backA = join(work, 'web-back-a.img');
  vmferry(a.address, 'disk', 'export', 'web', '0', backA);
  if ((await sha256File(backA)) !== (await sha256File(atB))) throw new Error('after failback A differs from B');
  console.log('web is back at site A, hash-equal to its state at B, writable at A again: OK');
} finally {
  step('stopping everything');
  for (const stop of stoppers.reverse()) await stop().catch(() => undefined);
  rmSync(work, { recursive: true, force: true });
  console.log('done');
}
