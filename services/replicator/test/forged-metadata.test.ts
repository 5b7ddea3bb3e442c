/**
 * A lying source's metadata and tree nodes, sent straight to the target node's replication RPCs
 * (as a compromised replicator or source would): each is refused with INVALID_ARGUMENT or
 * DATA_LOSS naming the thing, nothing is committed, other VMs' data is untouched, and the node
 * keeps serving; then the honest replication of the same snapshot succeeds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  encodeNode,
  fingerprint,
  IdSource,
  rawRecord,
  TREE_FANOUT,
  emptyNode,
  setChild,
  isVmferryError,
  toHex,
  HOLE,
  type ErrorCode,
  type SiteRecord,
  type SnapshotRecord,
  type SourceSnapshot,
  type VmRecord,
} from '@vmferry/core';
import { connectReplicationSource, connectStorageNode, storageNodeTarget } from '@vmferry/grpc-edge';
import { cliJson, exportSha, mintCerts, pairSites, runCli, seededBytes, startSite, writeDisk, type Site } from '@vmferry/testkit';
import { replicateSnapshot, type SourcePort, type TargetPort } from '../src/index.js';

const ids = new IdSource();

const MiB = 1024 * 1024;
const BLOCK = 64 * 1024;

interface VmJson {
  readonly name: string;
}

/** A tree node as the target stores it: raw record (codec 0) and its id. */
function node(level: number, children: readonly Buffer[], slots = children.length): { id: Buffer; record: Buffer } {
  const n = emptyNode(level, slots);
  children.forEach((c, i) => setChild(n, i, c));
  const bytes = encodeNode(n);
  return { id: fingerprint(bytes), record: rawRecord(bytes) };
}

async function put(target: TargetPort, nodes: readonly { id: Buffer; record: Buffer }[]): Promise<void> {
  const s = target.put();
  await s.write(nodes.map((n) => ({ ...n, node: true, compress: false })));
  await s.end();
}

function rejectsWith(code: ErrorCode, pattern: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isVmferryError(e), `a coded error: ${String(e)}`);
    assert.equal(e.code, code, `expected ${code}: ${String(e)}`);
    assert.match(e.message, pattern);
    assert.ok(e.message.length < 1000, 'the message stays readable');
    return true;
  };
}

describe('forged replica metadata and tree nodes', () => {
  let dir: string;
  let certs: string;
  let a: Site;
  let b: Site;
  let source: SourcePort;
  let target: TargetPort;
  let closeClients: () => void;
  let honest: SourceSnapshot;
  let donor: SourceSnapshot;
  /** Data chunk ids B holds (the blocks of `donor`, replicated honestly). */
  let held: Buffer[];
  let bystanderSha: string;
  let donorSha: string;
  const vms = async (site: Site): Promise<string[]> => (await cliJson<VmJson[]>(site.api, ['vm', 'list'])).map((v) => v.name).sort();

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-forged-'));
    certs = join(dir, 'certs');
    mintCerts(certs, ['siteA', 'siteB']);
    [a, b] = await Promise.all([startSite('siteA', join(dir, 'a'), certs), startSite('siteB', join(dir, 'b'), certs)]);
    await pairSites(a, b);
    const site: SiteRecord = { name: 'siteA', replicationAddress: a.repl, identity: 'siteA', nodeAddress: '', bindAddress: '', rate: '' };
    const src = connectReplicationSource(site, { cert: join(certs, 'siteB.crt'), key: join(certs, 'siteB.key'), ca: join(certs, 'ca.crt') });
    const nc = connectStorageNode(b.api);
    closeClients = () => {
      src.close();
      nc.close();
    };
    source = src;
    target = storageNodeTarget(nc);

    // At B: a local VM with live (unsnapshotted) writes, which a widened range delete would hit.
    await cliJson(b.api, ['vm', 'create', 'bystander', '--disk', '4M']);
    await writeDisk(b.api, 'bystander', 0, seededBytes('forged-bystander', 1 * MiB));
    bystanderSha = await exportSha(b.api, 'bystander');
    // A donor replicated honestly, so B holds its data chunks and its 16 MiB tree.
    const donorData = seededBytes('forged-donor', 16 * MiB);
    await cliJson(a.api, ['vm', 'create', 'donor', '--disk', '16M']);
    await writeDisk(a.api, 'donor', 0, donorData);
    await cliJson(a.api, ['snapshot', 'create', 'donor', '--label', 's1']);
    await replicateSnapshot({ source, target, sourceSite: 'siteA', ref: 'donor@s1' });
    donorSha = await exportSha(a.api, 'donor@s1');
    donor = await source.getSnapshot('donor@s1');
    held = Array.from({ length: (16 * MiB) / BLOCK }, (_, i) => fingerprint(donorData.subarray(i * BLOCK, (i + 1) * BLOCK)));
    // The victim: 128 MiB (2,048 blocks: a level-1 root of 2 slots), not yet at B.
    await cliJson(a.api, ['vm', 'create', 'victim', '--disk', '128M']);
    await writeDisk(a.api, 'victim', 0, seededBytes('forged-victim', 2 * MiB), 70 * MiB);
    await cliJson(a.api, ['snapshot', 'create', 'victim', '--label', 's1']);
    honest = await source.getSnapshot('victim@s1');
    // Another 128 MiB VM B never receives: its tree nodes must travel, so the replicator sees them.
    await cliJson(a.api, ['vm', 'create', 'victim2', '--disk', '128M']);
    await writeDisk(a.api, 'victim2', 0, seededBytes('forged-victim2', 1 * MiB), 90 * MiB);
    await cliJson(a.api, ['snapshot', 'create', 'victim2', '--label', 's1']);
  });

  after(async () => {
    closeClients?.();
    await a?.proc.stop();
    await b?.proc.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const vmOf = (): VmRecord => honest.vm;
  const snapOf = (): SnapshotRecord => honest.snapshot;
  /** A new VM and snapshot over the donor's tree, which B holds: commitable unless refused. */
  let forgeries = 0;
  const forged = (name = `forged-${++forgeries}`): { vm: VmRecord; snap: SnapshotRecord } => {
    const vm: VmRecord = { ...donor.vm, id: ids.next(), name };
    return { vm, snap: { ...donor.snapshot, id: ids.next(), vmId: vm.id } };
  };

  /** Nothing was committed at B and its other VMs' data is as it was. */
  async function unchanged(): Promise<void> {
    const [names, bystander, donor] = await Promise.all([vms(b), exportSha(b.api, 'bystander'), exportSha(b.api, 'donor@s1')]);
    assert.deepEqual(names, ['bystander', 'donor']);
    assert.equal(bystander, bystanderSha, "the target's local VM (live writes) is untouched");
    assert.equal(donor, donorSha, 'the honest replica is untouched');
  }

  test('VM id "" is refused (INVALID_ARGUMENT); deleting "" afterwards touches no other VM', async () => {
    const { vm, snap } = forged();
    await assert.rejects(target.commit('siteA', { ...vm, id: '' }, { ...snap, vmId: '' }), rejectsWith('invalid-argument', /VM id '' is not a valid id/));
    await unchanged();
    const del = await runCli(b.api, ['vm', 'delete', '']);
    assert.notEqual(del.code, 0);
    await unchanged();
  });

  test("VM id 'x/../y' is refused", async () => {
    const { vm, snap } = forged();
    await assert.rejects(
      target.commit('siteA', { ...vm, id: 'x/../y' }, { ...snap, vmId: 'x/../y' }),
      rejectsWith('invalid-argument', /VM id 'x\/\.\.\/y' is not a valid id/),
    );
    await unchanged();
  });

  test("VM names '../../etc' and one of 10,000 characters are refused", async () => {
    const etc = forged('../../etc');
    await assert.rejects(target.commit('siteA', etc.vm, etc.snap), rejectsWith('invalid-argument', /invalid VM name '\.\.\/\.\.\/etc'/));
    const long = forged('a'.repeat(10_000));
    await assert.rejects(target.commit('siteA', long.vm, long.snap), rejectsWith('invalid-argument', /invalid VM name/));
    await unchanged();
  });

  test("label 'a/b@c' is refused", async () => {
    const { vm, snap } = forged();
    await assert.rejects(target.commit('siteA', vm, { ...snap, label: 'a/b@c' }), rejectsWith('invalid-argument', /invalid snapshot label 'a\/b@c'/));
    await unchanged();
  });

  test('a snapshot with zero disks is refused', async () => {
    const { vm, snap } = forged();
    await assert.rejects(target.commit('siteA', { ...vm, disks: [] }, { ...snap, disks: [] }), rejectsWith('invalid-argument', /has 0 vDisks/));
    await assert.rejects(target.commit('siteA', vm, { ...snap, disks: [] }), rejectsWith('invalid-argument', /has 0 vDisks/));
    await unchanged();
  });

  test('a 1 TiB disk over a 16 MiB tree the target holds is refused (DATA_LOSS)', async () => {
    const root = donor.snapshot.disks[0]?.root ?? '';
    const disk = { index: 0, size: 1024 ** 4, blockSize: BLOCK, gridOffset: 0 };
    const vm: VmRecord = { ...vmOf(), id: ids.next(), name: 'huge', disks: [{ ...disk, root: toHex(HOLE) }] };
    const snap: SnapshotRecord = { ...snapOf(), id: ids.next(), vmId: vm.id, disks: [{ ...disk, root }] };
    await assert.rejects(
      target.commit('siteA', vm, snap),
      rejectsWith('data-loss', /vDisk 0 .*level 0 with 256 slots where the disk's geometry has level 2 with 16/),
    );
    await unchanged();
  });

  test("a level-1 root over data chunks the target holds is refused at put; the snapshot's honest replication then succeeds", async () => {
    const forged = node(1, [held[0] as Buffer, held[1] as Buffer]);
    await assert.rejects(put(target, [forged]), rejectsWith('data-loss', /level-1 tree node references chunk [0-9a-f]{12}, which is not a tree node/));
    // Committing the honest snapshot's metadata over that root is refused too (it is not here).
    const snap = snapOf();
    const lying: SnapshotRecord = { ...snap, disks: snap.disks.map((d) => ({ ...d, root: forged.id.toString('hex') })) };
    await assert.rejects(target.commit('siteA', vmOf(), lying), rejectsWith('failed-precondition', /root [0-9a-f]{12} has not arrived/));
    await unchanged();
    const ok = await replicateSnapshot({ source, target, sourceSite: 'siteA', ref: 'victim@s1' });
    assert.equal(ok.vmName, 'victim');
    assert.equal(await exportSha(b.api, 'victim@s1'), await exportSha(a.api, 'victim@s1'));
    const r = await runCli(b.api, ['vm', 'delete', 'victim']);
    assert.equal(r.code, 0, r.stderr);
    await unchanged();
  });

  test('a node whose children are of the wrong level is refused (DATA_LOSS)', async () => {
    const leaf = node(
      0,
      Array.from({ length: TREE_FANOUT }, (_, i) => held[i % held.length] as Buffer),
    );
    await put(target, [leaf]);
    // Level 2 over level-0 nodes, stored already and in the same batch.
    await assert.rejects(
      put(target, [node(2, [leaf.id, leaf.id])]),
      rejectsWith('data-loss', /level-2 tree node references tree node [0-9a-f]{12} of level 0/),
    );
    const other = node(0, [held[5] as Buffer]);
    await assert.rejects(put(target, [other, node(2, [other.id])]), rejectsWith('data-loss', /of level 0/));
    await unchanged();
  });

  test('a node with more slots than the geometry allows, or a short node off the right edge, is refused (DATA_LOSS)', async () => {
    const leaf = node(
      0,
      Array.from({ length: TREE_FANOUT }, (_, i) => held[(i * 7) % held.length] as Buffer),
    );
    // The victim's 128 MiB disk has 2,048 blocks: a level-1 root of 2 slots. This one has 3.
    const wide = node(1, [leaf.id, leaf.id, leaf.id]);
    await put(target, [leaf, wide]);
    const vm: VmRecord = { ...vmOf(), id: ids.next(), name: 'wide' };
    const snap: SnapshotRecord = { ...snapOf(), id: ids.next(), vmId: vm.id, disks: snapOf().disks.map((d) => ({ ...d, root: wide.id.toString('hex') })) };
    await assert.rejects(target.commit('siteA', vm, snap), rejectsWith('data-loss', /level 1 with 3 slots where the disk's geometry has level 1 with 2/));
    // A short level-0 node anywhere but the right edge would make reads of its blocks fail.
    const short = node(0, [held[3] as Buffer], 5);
    await assert.rejects(put(target, [short, node(1, [short.id, leaf.id])]), rejectsWith('data-loss', /subtree at slot 0 has a level-0 node of 5 slots/));
    // On the right edge the short node is what the geometry asks for (2,048 + 5 blocks).
    const edge = node(1, [leaf.id, leaf.id, short.id]);
    await put(target, [short, edge]);
    await unchanged();
  });

  test('the replicator refuses a lying source early, naming it: bad metadata and a root of the wrong level', async () => {
    const liar = (vm: VmRecord, snapshot: SnapshotRecord): SourcePort => ({ ...source, getSnapshot: async () => ({ ...honest, vm, snapshot }) });
    await assert.rejects(
      replicateSnapshot({ source: liar({ ...vmOf(), name: '../../etc' }, snapOf()), target, sourceSite: 'siteA', ref: 'victim@s1' }),
      (e: unknown) => (e as { code?: string }).code === 'invalid-argument' && /source site siteA .*invalid VM name '\.\.\/\.\.\/etc'/.test(String(e)),
    );
    // 1 TiB over a 128 MiB (level-1) tree that B does not hold: caught as the root arrives.
    const disk = { index: 0, size: 1024 ** 4, blockSize: BLOCK, gridOffset: 0 };
    const root = (await source.getSnapshot('victim2@s1')).snapshot.disks[0]?.root ?? '';
    const vm: VmRecord = { ...vmOf(), id: ids.next(), name: 'huge2', disks: [{ ...disk, root: toHex(HOLE) }] };
    await assert.rejects(
      replicateSnapshot({
        source: liar(vm, { ...snapOf(), id: ids.next(), vmId: vm.id, disks: [{ ...disk, root }] }),
        target,
        sourceSite: 'siteA',
        ref: 'victim@s1',
      }),
      (e: unknown) =>
        (e as { code?: string }).code === 'data-loss' && /source site siteA sent a tree node of level 1 with 2 slots where .* level 2 with 16/.test(String(e)),
    );
    await unchanged();
  });
});
