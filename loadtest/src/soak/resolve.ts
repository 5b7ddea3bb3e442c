/**
 * After an operation a kill cut off, look at the node and adopt what is there, if it is one
 * of the allowed outcomes: the operation happened whole or not at all (a write: each block
 * of the node's grid old or new). Anything else is a loss. Returns false when another kill
 * cut the look short (try again).
 */
import { blockwiseOldOrNew, DiskImage } from './disk-image.js';
import { sha256, type ClientIo, type VmJson } from './client-io.js';
import type { Pending, VmModel } from './model.js';

/** Resolves `p` against the node, updating `vms` (the client's VMs). */
export async function resolvePending(io: ClientIo, vms: VmModel[], p: Pending): Promise<boolean> {
  switch (p.kind) {
    case 'write':
    case 'restore':
      return resolveLive(io, p);
    case 'snapshot':
      return resolveSnapshot(io, p.vm, p.image);
    case 'snapshot-delete': {
      const listed = await io.listSnapshots(p.vm.name);
      if (!listed) return false;
      io.tally.check('interrupted snapshot delete');
      if (!listed.some((s) => s.id === p.snap.id)) p.vm.snapshots.splice(p.vm.snapshots.indexOf(p.snap), 1);
      return true;
    }
    case 'vm-delete': {
      const listed = await io.listVms();
      if (!listed) return false;
      io.tally.check('interrupted vm delete');
      if (!listed.some((v) => v.name === p.vm.name)) vms.splice(vms.indexOf(p.vm), 1);
      return true;
    }
    case 'new-vms':
      return resolveNewVms(io, vms, p.op, p.names, p.image);
  }
}

/** An interrupted write or restore: the live disk holds the old or the new content. */
async function resolveLive(io: ClientIo, p: Extract<Pending, { kind: 'write' | 'restore' }>): Promise<boolean> {
  const vm = p.vm;
  const r = await io.export(vm.name);
  if (r.status === 'interrupted') return false;
  const kind = `interrupted ${p.kind}`;
  io.tally.check(kind);
  if (r.status !== 'ok') {
    io.tally.loss(`live disk of ${vm.name} after an ${kind}: export failed`, 'old or new content', r.stderr);
    vm.lost = true;
    return true;
  }
  const got = r.value;
  if (p.kind === 'restore') {
    const sha = sha256(got);
    const found = [p.old, p.snap.image].find((img) => img.size === got.length && img.sha256() === sha);
    if (found) vm.image = found;
    else {
      io.tally.loss(
        `live disk of ${vm.name} after an ${kind}`,
        `sha256 ${p.old.sha256()} (before) or ${p.snap.image.sha256()} (snapshot ${p.snap.id})`,
        `neither`,
      );
      vm.image = DiskImage.adopt(got);
    }
    return true;
  }
  const bad = blockwiseOldOrNew(got, p.old.toBuffer(), p.next.toBuffer(), vm.gridOffset, vm.blockSize);
  if (bad) io.tally.loss(`live disk of ${vm.name} after an ${kind}`, 'each grid block old or new', `bytes ${bad.start}-${bad.end} are neither`);
  vm.image = DiskImage.adopt(got, [p.next, p.old]);
  return true;
}

/** An interrupted snapshot create: absent, or present and whole (the live content then). */
async function resolveSnapshot(io: ClientIo, vm: VmModel, image: DiskImage): Promise<boolean> {
  const listed = await io.listSnapshots(vm.name);
  if (!listed) return false;
  io.tally.check('interrupted snapshot create');
  const known = new Set(vm.snapshots.map((s) => s.id));
  const extra = listed.filter((s) => !known.has(s.id));
  if (extra.length > 1)
    io.tally.loss(`snapshots of ${vm.name} after an interrupted create`, 'at most one new snapshot', `${extra.length}: ${extra.map((s) => s.id).join(', ')}`);
  for (const s of extra) {
    const ok = await io.check(`${vm.name}@${s.id}`, image, 'interrupted snapshot content');
    if (ok === 'interrupted') return false;
    vm.snapshots.push({ id: s.id, image, at: io.tally.elapsed(), lost: ok === 'lost' });
  }
  return true;
}

/** An interrupted create, import or clone: none of the VMs, or all of them whole. */
async function resolveNewVms(io: ClientIo, vms: VmModel[], op: string, names: readonly string[], image: DiskImage): Promise<boolean> {
  const listed = await io.listVms();
  if (!listed) return false;
  io.tally.check(`interrupted ${op}`);
  const found = names.map((n) => listed.find((v) => v.name === n)).filter((v): v is VmJson => v !== undefined);
  if (found.length === 0) return true;
  if (found.length < names.length)
    io.tally.loss(`${op} ${names.join(', ')} after a kill`, 'all of the VMs or none', `only ${found.map((v) => v.name).join(', ')}`);
  for (const v of found) {
    const disk = v.disks[0];
    const ok = await io.check(v.name, image, `interrupted ${op} content`);
    if (ok === 'interrupted') return false;
    if (!vms.some((m) => m.name === v.name)) {
      vms.push({ name: v.name, image, gridOffset: disk?.gridOffset ?? 0, blockSize: disk?.blockSize ?? 65536, snapshots: [], lost: ok === 'lost' });
    }
  }
  return true;
}
