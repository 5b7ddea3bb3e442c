/**
 * Failover and failback between two real sites (storage node processes, mTLS replication, NBD
 * over each node's Unix socket, qemu-io as the guest): planned (zero loss), the old owner
 * fenced, failback moving about the changed bytes; unplanned (A stopped), A fenced when it
 * returns, its lost writes kept; bad input refused with nothing changed. Prints RTO and bytes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectStorageNode } from '@vmferry/grpc-edge';
import { cliJson, exportSha, mintCerts, runCli, seededBytes, startSite, writeDisk, type Site } from '@vmferry/testkit';

const MiB = 1024 * 1024;
const DISK = 32 * MiB;

interface Handover {
  readonly vm: string;
  readonly from: string;
  readonly to: string;
  readonly planned: boolean;
  readonly epoch: number;
  readonly snapshot: string;
  readonly bytesMoved: number;
  readonly fencedAtSource: boolean;
  readonly nbdExport: string;
}
interface VmJson {
  readonly id: string;
  readonly replicaOf: string;
  readonly epoch: number;
  readonly fencedBy: string;
  readonly fencedEpoch: number;
}
interface SnapJson {
  readonly id: string;
  readonly label: string;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** qemu-io over NBD; resolves with its exit code and output (a refused write exits non-zero or says so). */
function qemuIo(url: string, command: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile('qemu-io', ['-f', 'raw', '-c', command, url], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? 1 : 0, out: `${stdout}${stderr}` });
    });
  });
}

/** One qemu-io process over one NBD connection, fed a command at a time (the guest's open disk). */
function qemuIoSession(url: string): { run(command: string, done: RegExp): Promise<string>; quit(): Promise<void> } {
  const child = spawn('qemu-io', ['-f', 'raw', url], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return {
    async run(command, done) {
      const from = out.length;
      child.stdin.write(`${command}\n`);
      const deadline = Date.now() + 30_000;
      while (!done.test(out.slice(from))) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`qemu-io: no ${String(done)} after '${command}':\n${out}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return out.slice(from);
    },
    async quit() {
      child.stdin.end('quit\n');
      await exited;
    },
  };
}

describe('failover and failback between two sites', () => {
  let dir: string;
  let certs: string;
  let a: Site;
  let b: Site;
  const sockA = (): string => join(dir, `a-${restarts}.nbd`);
  let restarts = 0;
  const sockB = (): string => join(dir, 'b.nbd');
  const nbdUrl = (socket: string, name: string): string => `nbd+unix:///${name}?socket=${socket}`;
  const vmAt = async (s: Site, vm: string): Promise<VmJson> => cliJson<VmJson>(s.api, ['vm', 'show', vm]);
  const replicate = (at: Site, ref: string, from: string, to: string): Promise<unknown> =>
    cliJson(at.api, ['replicate', ref, '--from', from, '--to', to, '--certs', certs]);
  const register = async (): Promise<void> => {
    await cliJson(b.api, ['site', 'add', 'siteA', '--replication', a.repl, '--identity', 'siteA', '--node-address', a.api]);
    await cliJson(a.api, ['site', 'add', 'siteB', '--replication', b.repl, '--identity', 'siteB', '--node-address', b.api]);
  };

  // What vm1 holds, kept in step with every write the test makes (so every hash is of known bytes).
  const image = Buffer.alloc(DISK);
  const put = async (s: Site, data: Buffer, offset: number, img = image): Promise<void> => {
    await writeDisk(s.api, 'vm1', 0, data, offset);
    data.copy(img, offset);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-failover-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB']);
    a = await startSite('siteA', join(dir, 'a'), certs, ['--nbd-socket', sockA()]);
    b = await startSite('siteB', join(dir, 'b'), certs, ['--nbd-socket', sockB()]);
    await register();
    await cliJson(a.api, ['vm', 'create', 'vm1', '--disk', '32M']);
    await put(a, seededBytes('failover-base', 16 * MiB), 0);
    await cliJson(a.api, ['snapshot', 'create', 'vm1', '--label', 's1']);
    await replicate(b, 'vm1@s1', 'siteA', 'siteB');
    // Written after the last replicated snapshot: only the planned failover's final snapshot carries it.
    await put(a, seededBytes('failover-after-s1', MiB), 20 * MiB);
  });

  after(async () => {
    await a?.proc.stop();
    await b?.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  let changedAtB = 0;

  test('planned failover A→B: zero loss, B writable over NBD at once, A fenced (writes refused)', async () => {
    // The guest at A has its disk open over NBD across the failover.
    const guestA = qemuIoSession(nbdUrl(sockA(), 'vm1/0'));
    await guestA.run('write -P 0x33 28M 4k', /wrote 4096\/4096 bytes/);
    Buffer.alloc(4096, 0x33).copy(image, 28 * MiB);
    assert.equal(await exportSha(a.api, 'vm1'), sha(image));
    const t0 = performance.now();
    const h = await cliJson<Handover>(b.api, ['failover', 'vm1', '--to', 'siteB', '--planned', '--certs', certs]);
    // The guest's first write at B, over NBD: the failover is done when it is acknowledged.
    const w = await qemuIo(nbdUrl(sockB(), 'vm1/0'), 'write -P 0x5a 30M 64k');
    const rto = (performance.now() - t0) / 1000;
    assert.equal(w.code, 0, w.out);
    Buffer.alloc(64 * 1024, 0x5a).copy(image, 30 * MiB);
    changedAtB += 64 * 1024;
    process.stdout.write(
      `# planned failover RTO (command to an acknowledged NBD write at B): ${rto.toFixed(2)} s; final snapshot moved ${h.bytesMoved} bytes\n`,
    );
    assert.ok(rto <= 5, `RTO ${rto.toFixed(2)} s`);
    assert.equal(h.planned, true);
    assert.equal(h.epoch, 1);
    assert.equal(h.fencedAtSource, true);
    assert.equal(h.snapshot, 'vm1@fenced-1');
    assert.equal(h.nbdExport, nbdUrl(sockB(), 'vm1/0'), 'the export the guest at B opens');
    // Zero loss: B's live disk is A's last state (with the 1 MiB never in a replicated snapshot) plus B's write.
    assert.equal(await exportSha(b.api, 'vm1'), sha(image));
    const atB = await vmAt(b, 'vm1');
    assert.deepEqual([atB.replicaOf, atB.epoch, atB.fencedBy], ['', 1, '']);
    const atA = await vmAt(a, 'vm1');
    assert.deepEqual([atA.fencedBy, atA.fencedEpoch, atA.epoch], ['siteB', 1, 0]);

    // A's copy is fenced: disk write and NBD write refused, naming the owner; its data unchanged.
    const before = await exportSha(a.api, 'vm1');
    const dw = await runCli(a.api, ['disk', 'write', 'vm1', '0', join(certs, 'ca.crt')]);
    assert.notEqual(dw.code, 0);
    assert.match(dw.stderr, /fenced here: site siteB owns it since epoch 1/);
    // On the connection opened before the fence: refused (EPERM) by the per-batch check.
    assert.match(await guestA.run('write -P 0x44 28M 4k', /write failed|wrote/), /write failed: Operation not permitted/);
    await guestA.quit();
    // On a connection opened after it: the export is read-only.
    const nw = await qemuIo(nbdUrl(sockA(), 'vm1/0'), 'write -P 0x11 0 4k');
    assert.ok(nw.code !== 0 || /failed|not permitted|read-only/i.test(nw.out), nw.out);
    const snap = await runCli(a.api, ['snapshot', 'create', 'vm1']);
    assert.notEqual(snap.code, 0, 'a fenced copy takes no snapshots (schedules skip it)');
    assert.equal(await exportSha(a.api, 'vm1'), before);

    // B takes writes through the ordinary path too.
    await put(b, seededBytes('failover-at-b', 2 * MiB), 8 * MiB);
    changedAtB += 2 * MiB;
    assert.equal(await exportSha(b.api, 'vm1'), sha(image));
  });

  test('failback B→A: A == B, only about the changed bytes move, A keeps its history and is writable', async () => {
    const h = await cliJson<Handover>(a.api, ['failback', 'vm1', '--certs', certs]);
    process.stdout.write(`# failback moved ${h.bytesMoved} bytes for ${changedAtB} bytes changed at B (${(h.bytesMoved / changedAtB).toFixed(3)}×)\n`);
    assert.ok(h.bytesMoved <= 1.2 * changedAtB, `moved ${h.bytesMoved} for ${changedAtB} changed`);
    assert.ok(h.bytesMoved > 0);
    assert.deepEqual([h.from, h.to, h.epoch, h.snapshot], ['siteB', 'siteA', 2, 'vm1@fenced-2']);
    assert.equal(await exportSha(a.api, 'vm1'), sha(image));
    assert.equal(await exportSha(b.api, 'vm1'), sha(image));
    const atA = await vmAt(a, 'vm1');
    assert.deepEqual([atA.epoch, atA.fencedBy, atA.replicaOf], [2, '', '']);
    const atB = await vmAt(b, 'vm1');
    assert.deepEqual([atB.fencedBy, atB.fencedEpoch], ['siteA', 2]);
    const labels = (await cliJson<SnapJson[]>(a.api, ['snapshot', 'list', 'vm1'])).map((s) => s.label);
    assert.deepEqual(labels, ['s1', 'fenced-1', 'fenced-2'], 'history: nothing superseded (A wrote nothing after its fence)');
    await put(a, seededBytes('failover-back-at-a', 64 * 1024), 0);
    assert.equal(await exportSha(a.api, 'vm1'), sha(image));
  });

  test('bad input: unknown VM or site, promoting an owned VM, a peer claiming a lower epoch: clear errors, nothing changed', async () => {
    const shaA = await exportSha(a.api, 'vm1');
    const snapsA = await cliJson<SnapJson[]>(a.api, ['snapshot', 'list', 'vm1']);
    const fail = async (at: Site, args: string[], why: RegExp): Promise<void> => {
      const r = await runCli(at.api, args);
      assert.notEqual(r.code, 0, `${args.join(' ')} succeeded`);
      assert.match(r.stderr, why);
    };
    await fail(b, ['failover', 'nope', '--to', 'siteB', '--planned', '--certs', certs], /nope/);
    await fail(b, ['failover', 'vm1', '--to', 'siteZ', '--planned', '--certs', certs], /site 'siteZ' is not known at site siteB/);
    await fail(a, ['failover', 'vm1', '--to', 'siteA'], /owned by site siteA already \(epoch 2\)/);
    await fail(a, ['failback', 'vm1', '--certs', certs], /is not fenced/);
    // B's copy is at epoch 1 (fenced by A at 2): replicating it into A is a stale peer's claim.
    await fail(
      a,
      ['replicate', 'vm1@fenced-1', '--from', 'siteB', '--to', 'siteA', '--certs', certs],
      /epoch 1, but this site knows epoch 2: siteB's copy is stale/,
    );
    const node = connectStorageNode(a.api);
    try {
      await assert.rejects(
        node.promoteVm({ vm: 'vm1', snapshot: '', epoch: 0 }),
        /not a replica or a fenced copy here: it is the writable VM already \(epoch 2\)/,
      );
      await assert.rejects(
        node.fenceVm({ vm: 'vm1', ownerSite: 'siteB', ownerEpoch: 1 }),
        /site siteB claims VM 'vm1' at epoch 1, but this copy knows epoch 2/,
      );
      await assert.rejects(node.fenceVm({ vm: 'vm1', ownerSite: 'siteA', ownerEpoch: 9 }), /cannot be fenced by its own site/);
      await assert.rejects(node.fenceVm({ vm: 'vm1', ownerSite: 'bad site!', ownerEpoch: 9 }), /owner site 'bad site!' is invalid/);
      await assert.rejects(node.fenceVm({ vm: 'nope', ownerSite: 'siteB', ownerEpoch: 9 }), /nope/);
    } finally {
      node.close();
    }
    const b2 = connectStorageNode(b.api);
    try {
      await assert.rejects(b2.promoteVm({ vm: 'vm1', snapshot: '', epoch: 2 }), /at epoch 2 refused: this copy knows epoch 2/);
    } finally {
      b2.close();
    }
    assert.equal(await exportSha(a.api, 'vm1'), shaA);
    assert.deepEqual(await cliJson<SnapJson[]>(a.api, ['snapshot', 'list', 'vm1']), snapsA);
    assert.deepEqual(await vmAt(a, 'vm1').then((v) => [v.epoch, v.fencedBy]), [2, '']);
    assert.deepEqual(await vmAt(b, 'vm1').then((v) => [v.epoch, v.fencedBy, v.fencedEpoch]), [1, 'siteA', 2]);
  });

  test('a planned failover stopped after the fence (both copies read-only) is finished by running it again: same epoch, zero loss', async () => {
    const shaA = await exportSha(a.api, 'vm1');
    // Step 1 only, as if the command died after it: A fenced for B at epoch 3, B not promoted.
    const node = connectStorageNode(a.api);
    try {
      const f = await node.fenceVm({ vm: 'vm1', ownerSite: 'siteB', ownerEpoch: 3 });
      assert.equal(f.snapshot?.label, 'fenced-3');
    } finally {
      node.close();
    }
    const w = await runCli(b.api, ['disk', 'write', 'vm1', '0', join(certs, 'ca.crt')]);
    assert.match(w.stderr, /fenced here: site siteA owns it since epoch 2/, 'B is still fenced: no copy is writable');
    const h = await cliJson<Handover>(b.api, ['failover', 'vm1', '--to', 'siteB', '--planned', '--certs', certs]);
    assert.deepEqual([h.epoch, h.snapshot], [3, 'vm1@fenced-3']);
    assert.equal(await exportSha(b.api, 'vm1'), shaA);
    assert.deepEqual(await vmAt(b, 'vm1').then((v) => [v.epoch, v.fencedBy]), [3, '']);
    // B's own copy (fenced since epoch 2, unwritten) needed no superseded snapshot.
    const labels = (await cliJson<SnapJson[]>(b.api, ['snapshot', 'list', 'vm1'])).map((x) => x.label);
    assert.ok(!labels.some((l) => l.startsWith('superseded-')), labels.join(','));
  });

  test('unplanned failover (A stopped): B promotes its newest replica; A, back, learns it is stale and is fenced; its lost writes are kept', async () => {
    const img2 = Buffer.alloc(DISK);
    const put2 = async (s: Site, data: Buffer, offset: number): Promise<void> => {
      await writeDisk(s.api, 'vm2', 0, data, offset);
      data.copy(img2, offset);
    };
    await cliJson(a.api, ['vm', 'create', 'vm2', '--disk', '32M']);
    await put2(a, seededBytes('unplanned-base', 8 * MiB), 0);
    await cliJson(a.api, ['snapshot', 'create', 'vm2', '--label', 's1']);
    await replicate(b, 'vm2@s1', 'siteA', 'siteB');
    const replicated = Buffer.from(img2);
    // Never replicated: lost to the VM's history by the unplanned failover, kept at A.
    await put2(a, seededBytes('unplanned-lost', MiB), 12 * MiB);
    const lost = Buffer.from(img2);
    await a.proc.stop();

    const t0 = performance.now();
    const h = await cliJson<Handover>(b.api, ['failover', 'vm2', '--to', 'siteB']);
    const w = await qemuIo(nbdUrl(sockB(), 'vm2/0'), 'write -P 0x77 16M 64k');
    const rto = (performance.now() - t0) / 1000;
    assert.equal(w.code, 0, w.out);
    process.stdout.write(`# unplanned failover RTO (command to an acknowledged NBD write at B): ${rto.toFixed(2)} s\n`);
    assert.ok(rto <= 5, `RTO ${rto.toFixed(2)} s`);
    assert.deepEqual([h.planned, h.epoch, h.fencedAtSource, h.snapshot], [false, 1, false, 'vm2@s1']);
    const atB = Buffer.from(replicated);
    Buffer.alloc(64 * 1024, 0x77).copy(atB, 16 * MiB);
    assert.equal(await exportSha(b.api, 'vm2'), sha(atB));

    // A returns (new addresses), still believing it owns vm2 until it hears from B.
    restarts++;
    a = await startSite('siteA', a.dataDir, certs, ['--nbd-socket', sockA()]);
    await register();
    assert.deepEqual(await vmAt(a, 'vm2').then((v) => [v.epoch, v.fencedBy]), [0, '']);
    await cliJson(b.api, ['snapshot', 'create', 'vm2', '--label', 'b1']);
    // Replication from the new owner into A: A learns epoch 1 and fences its copy.
    await replicate(a, 'vm2@b1', 'siteB', 'siteA');
    assert.deepEqual(await vmAt(a, 'vm2').then((v) => [v.epoch, v.fencedBy, v.fencedEpoch]), [0, 'siteB', 1]);
    // The fence is durable: it survives a restart of A.
    await a.proc.stop();
    restarts++;
    a = await startSite('siteA', a.dataDir, certs, ['--nbd-socket', sockA()]);
    await register();
    const dw = await runCli(a.api, ['disk', 'write', 'vm2', '0', join(certs, 'ca.crt')]);
    assert.notEqual(dw.code, 0);
    assert.match(dw.stderr, /fenced here: site siteB owns it since epoch 1/);
    assert.equal(await exportSha(a.api, 'vm2'), sha(lost), 'fencing changed nothing at A');

    // For people: progress lines on stderr, a result table on stdout.
    const back = await runCli(a.api, ['failback', 'vm2', '--certs', certs]);
    assert.equal(back.code, 0, back.stderr);
    assert.match(
      back.stderr,
      /1\/3 fencing vm2 at siteB \(owner from now: siteA, epoch 2\)[^]*2\/3 replicating vm2@fenced-2 siteB → siteA[^]*3\/3 promoting vm2 at siteA/,
    );
    assert.match(back.stdout, /^VM\s+FROM\s+TO\s+KIND\s+EPOCH\s+SNAPSHOT\s+MOVED/m);
    assert.match(back.stdout, /^vm2\s+siteB\s+siteA\s+planned\s+2\s+vm2@fenced-2\s/m);
    process.stdout.write(`# unplanned case, failback:\n${back.stdout.replace(/^/gm, '#   ')}\n`);
    assert.deepEqual(await vmAt(a, 'vm2').then((v) => [v.epoch, v.fencedBy]), [2, '']);
    assert.equal(await exportSha(a.api, 'vm2'), sha(atB));
    // A's writes that B never had are kept as a snapshot, not silently dropped.
    assert.equal(await exportSha(a.api, 'vm2@superseded-1'), sha(lost));
  });
});
