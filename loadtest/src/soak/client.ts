/**
 * A soak client: one at a time, it writes, snapshots, clones, restores, deletes and imports
 * its own VMs through the CLI, keeping the exact expected content of each. An operation a
 * kill cut off is resolved (see resolve.ts) before the next one, so the model stays exact.
 */
import { writeFileSync } from 'node:fs';
import { DiskImage } from './disk-image.js';
import type { ClientIo, SnapshotJson, VmJson } from './client-io.js';
import { CREATED_DISK, importImage, writePayload, type Pending, type SnapModel, type VmModel } from './model.js';
import type { Rng } from '@vmferry/testkit';
import { resolvePending } from './resolve.js';

/** Most VMs a client keeps (own, imported and clones). */
const MAX_VMS = 5;
/** Most snapshots a client keeps per VM; beyond, it deletes (old snapshots become garbage). */
const MAX_SNAPSHOTS = 5;

type Op = 'write' | 'snapshot' | 'check' | 'snapshot-delete' | 'restore' | 'clone' | 'clone-3' | 'vm-delete' | 'import' | 'create';

/** One client and its VMs. */
export class SoakClient {
  readonly vms: VmModel[] = [];
  private pending: Pending | undefined;
  private counter = 0;

  constructor(
    private readonly io: ClientIo,
    private readonly rng: Rng,
    /** VM name prefix, unique per client: names are never reused. */
    private readonly prefix: string,
    private readonly library: readonly Buffer[],
  ) {}

  /** Runs operations until `stopped()`; then settles a cut-off operation, if any. */
  async run(stopped: () => boolean): Promise<void> {
    while (!stopped()) {
      if (!(await this.settle())) continue;
      await this.step();
    }
  }

  /** Resolves the pending operation; false if a kill cut that short (try again). */
  async settle(): Promise<boolean> {
    if (!this.pending) return true;
    if (!(await resolvePending(this.io, this.vms, this.pending))) return false;
    this.pending = undefined;
    return true;
  }

  private usable(): VmModel[] {
    return this.vms.filter((v) => !v.lost);
  }

  private async step(): Promise<void> {
    const usable = this.usable();
    const withSnaps = usable.filter((v) => v.snapshots.some((s) => !s.lost));
    const room = MAX_VMS - this.vms.length;
    const weights: Record<Op, number> =
      usable.length === 0
        ? { write: 0, snapshot: 0, check: 0, 'snapshot-delete': 0, restore: 0, clone: 0, 'clone-3': 0, 'vm-delete': 0, import: 0, create: 1 }
        : {
            // Writes then snapshots, as in the attack that found the GC race (issue 7).
            write: 30,
            snapshot: 22,
            check: 10,
            'snapshot-delete': withSnaps.length > 0 ? 7 : 0,
            restore: withSnaps.length > 0 ? 6 : 0,
            clone: withSnaps.length > 0 && room >= 1 ? 6 : 0,
            'clone-3': withSnaps.length > 0 && room >= 3 ? 2 : 0,
            'vm-delete': this.vms.length > 2 || (room < 3 && usable.length > 1) ? 5 : 0,
            import: room >= 1 ? 4 : 0,
            create: room >= 1 ? 2 : 0,
          };
    const op = this.rng.weighted(weights);
    switch (op) {
      case 'write':
        return this.write(this.rng.pick(usable));
      case 'snapshot': {
        const vm = this.rng.pick(usable);
        return vm.snapshots.length >= MAX_SNAPSHOTS ? this.deleteSnapshot(vm, vm.snapshots[0] as SnapModel) : this.snapshot(vm);
      }
      case 'check':
        return this.check(this.rng.pick(this.usable()));
      case 'snapshot-delete': {
        const vm = this.rng.pick(withSnaps);
        return this.deleteSnapshot(vm, this.rng.pick(vm.snapshots));
      }
      case 'restore': {
        const vm = this.rng.pick(withSnaps);
        return this.restore(vm, this.rng.pick(vm.snapshots.filter((s) => !s.lost)));
      }
      case 'clone':
      case 'clone-3': {
        const vm = this.rng.pick(withSnaps);
        return this.clone(vm, this.rng.pick(vm.snapshots.filter((s) => !s.lost)), op === 'clone' ? 1 : 3);
      }
      case 'vm-delete':
        return this.deleteVm(this.rng.pick(this.vms));
      case 'import':
        return this.import();
      case 'create':
        return this.create();
    }
  }

  /** Records the outcome of a call: done, or pending (cut off, or failed: not known either). */
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- T ties the call result to its callback at each call site
  private outcome<T>(op: string, r: Awaited<ReturnType<ClientIo['call']>>, pending: Pending, done: (v: T) => void, lostVm?: VmModel): void {
    if (r.status === 'ok') {
      this.io.tally.op(op);
      done(r.value as T);
      return;
    }
    if (r.status === 'data-loss') {
      // The node itself says data it holds is gone: whatever this op was, a loss.
      this.io.tally.loss(`${op}${lostVm ? ` on ${lostVm.name}` : ''} failed with DATA_LOSS`, 'the operation to succeed', r.stderr);
      if (lostVm) lostVm.lost = true;
    }
    if (r.status === 'interrupted') this.io.tally.unknown(op);
    if (!lostVm?.lost) this.pending = pending;
  }

  private async write(vm: VmModel): Promise<void> {
    const { offset, data } = writePayload(this.rng, vm.image.size, this.library);
    writeFileSync(this.io.scratch, data);
    const old = vm.image;
    const next = old.write(offset, data);
    const r = await this.io.call('disk write', ['disk', 'write', vm.name, '0', this.io.scratch, '--offset', String(offset)]);
    this.outcome('disk write', r, { kind: 'write', vm, old, next }, () => (vm.image = next), vm);
  }

  private async snapshot(vm: VmModel): Promise<void> {
    const image = vm.image;
    const r = await this.io.call('snapshot create', ['snapshot', 'create', vm.name]);
    this.outcome<SnapshotJson>(
      'snapshot create',
      r,
      { kind: 'snapshot', vm, image },
      (s) => vm.snapshots.push({ id: s.id, image, at: this.io.tally.elapsed(), lost: false }),
      vm,
    );
  }

  private async deleteSnapshot(vm: VmModel, snap: SnapModel): Promise<void> {
    const r = await this.io.call('snapshot delete', ['snapshot', 'delete', `${vm.name}@${snap.id}`]);
    this.outcome('snapshot delete', r, { kind: 'snapshot-delete', vm, snap }, () => vm.snapshots.splice(vm.snapshots.indexOf(snap), 1));
  }

  private async restore(vm: VmModel, snap: SnapModel): Promise<void> {
    const old = vm.image;
    const r = await this.io.call('restore', ['restore', `${vm.name}@${snap.id}`]);
    this.outcome('restore', r, { kind: 'restore', vm, old, snap }, () => (vm.image = snap.image), vm);
  }

  private async clone(vm: VmModel, snap: SnapModel, count: number): Promise<void> {
    const name = this.name('k');
    const names = count === 1 ? [name] : Array.from({ length: count }, (_, i) => `${name}-${String(i + 1).padStart(3, '0')}`);
    const args = ['clone', `${vm.name}@${snap.id}`, name, ...(count === 1 ? [] : ['--count', String(count)])];
    const op = count === 1 ? 'clone' : `clone --count ${count}`;
    const r = await this.io.call(op, args);
    this.outcome<{ vms: VmJson[] }>(op, r, { kind: 'new-vms', op, names, image: snap.image }, (out) => this.adopt(out.vms, snap.image));
  }

  private async deleteVm(vm: VmModel): Promise<void> {
    const r = await this.io.call('vm delete', ['vm', 'delete', vm.name]);
    this.outcome('vm delete', r, { kind: 'vm-delete', vm }, () => this.vms.splice(this.vms.indexOf(vm), 1));
  }

  private async import(): Promise<void> {
    const name = this.name('i');
    const bytes = importImage(this.rng, this.library);
    writeFileSync(this.io.scratch, bytes);
    const image = DiskImage.adopt(bytes);
    const r = await this.io.call('vm import', ['vm', 'import', name, this.io.scratch]);
    this.outcome<VmJson>('vm import', r, { kind: 'new-vms', op: 'vm import', names: [name], image }, (v) => this.adopt([v], image));
  }

  private async create(): Promise<void> {
    const name = this.name('v');
    const image = DiskImage.empty(CREATED_DISK);
    const r = await this.io.call('vm create', ['vm', 'create', name, '--disk', String(CREATED_DISK), '--block-size', '64K']);
    this.outcome<VmJson>('vm create', r, { kind: 'new-vms', op: 'vm create', names: [name], image }, (v) => this.adopt([v], image));
  }

  /** Exports the live disk or a snapshot (chosen at random) and compares it with the model. */
  private async check(vm: VmModel): Promise<void> {
    const snaps = vm.snapshots.filter((s) => !s.lost);
    const snap = snaps.length > 0 && this.rng.next() < 0.6 ? this.rng.pick(snaps) : undefined;
    const ok = await this.io.check(
      snap ? `${vm.name}@${snap.id}` : vm.name,
      snap ? snap.image : vm.image,
      snap ? 'snapshot export' : 'live export',
      snap ? `created at ${snap.at} s` : '',
    );
    if (ok === 'lost') {
      if (snap) snap.lost = true;
      else vm.lost = true;
    }
  }

  private adopt(created: readonly VmJson[], image: DiskImage): void {
    for (const v of created) {
      const disk = v.disks[0];
      this.vms.push({ name: v.name, image, gridOffset: disk?.gridOffset ?? 0, blockSize: disk?.blockSize ?? 65536, snapshots: [], lost: false });
    }
  }

  private name(kind: string): string {
    return `${this.prefix}-${kind}${++this.counter}`;
  }
}
