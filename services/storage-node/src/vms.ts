import {
  AlreadyExistsError,
  assertOwned,
  type CreateVmInput,
  DEFAULT_BLOCK_SIZE,
  HOLE,
  InvalidArgumentError,
  isId,
  MAX_DISKS_PER_VM,
  FailedPreconditionError,
  MAX_HYPERVISOR_CONFIG_BYTES,
  NotFoundError,
  toHex,
  validateHypervisorConfig,
  validateLayout,
  validateVmName,
  type VmRecord,
} from '@vmferry/core';
import type { EngineContext } from './context.js';

// Shared with the checks of replicas from peers, so local and peer input meet one rule.
export { MAX_DISKS_PER_VM, MAX_HYPERVISOR_CONFIG_BYTES } from '@vmferry/core';

/** Finds a VM by name or id; throws NotFoundError naming what was asked for. */
export function resolveVm(ctx: EngineContext, nameOrId: string): VmRecord {
  const vm = ctx.catalog.vmByName(nameOrId) ?? (isId(nameOrId) ? ctx.catalog.vmById(nameOrId) : undefined);
  if (!vm) throw new NotFoundError('vm', nameOrId);
  return vm;
}

/** Validates a new VM and builds its record (empty disks); writes nothing. */
export function buildVm(ctx: EngineContext, input: CreateVmInput): VmRecord {
  const name = validateVmName(input.name);
  if (ctx.catalog.vmByName(name)) throw new AlreadyExistsError(`a VM named '${name}' already exists`);
  if (input.disks.length === 0 || input.disks.length > MAX_DISKS_PER_VM) {
    throw new InvalidArgumentError(`a VM needs 1 to ${MAX_DISKS_PER_VM} vDisks; got ${input.disks.length}`);
  }
  const config = input.hypervisorConfig ?? new Uint8Array();
  if (config.length > MAX_HYPERVISOR_CONFIG_BYTES) {
    throw new InvalidArgumentError(`hypervisor config is ${config.length} bytes; the limit is ${MAX_HYPERVISOR_CONFIG_BYTES}`);
  }
  const disks = input.disks.map((d, index) => {
    const layout = validateLayout({ size: d.size, blockSize: d.blockSize || DEFAULT_BLOCK_SIZE, gridOffset: 0 });
    return { index, ...layout, root: toHex(HOLE) };
  });
  return {
    id: ctx.ids.next(),
    name,
    createdAtMs: Date.now(),
    homeSite: ctx.options.site,
    hypervisorConfig: Buffer.from(config).toString('base64'),
    disks,
  };
}

/**
 * Creates (or, with `importing`, begins importing) a VM. Its config is checked as a template
 * here and when replaced (setVmConfig), not when cloned: a clone copies its parent's as is.
 */
export async function createVm(ctx: EngineContext, input: CreateVmInput, extra: Partial<VmRecord> = {}): Promise<VmRecord> {
  validateHypervisorConfig(input.hypervisorConfig ?? new Uint8Array(), input.disks.length);
  const vm = { ...buildVm(ctx, input), ...extra };
  await ctx.withVmNames([vm.name], () => ctx.catalog.commit((tx) => tx.putVm(vm), { durable: true }));
  return vm;
}

/** Replaces a VM's hypervisor config (template), checked like one given at creation. */
export async function setVmConfig(ctx: EngineContext, nameOrId: string, config: Uint8Array): Promise<VmRecord> {
  const vm0 = resolveVm(ctx, nameOrId);
  return ctx.vmLock(vm0.id).exclusive(async () => {
    const vm = resolveVm(ctx, vm0.id);
    if (vm.replicaOf) throw new FailedPreconditionError(`VM '${vm.name}' is a read-only replica of site ${vm.replicaOf}: its config comes from there`);
    if (vm.importing) throw new FailedPreconditionError(`VM '${vm.name}' is still importing`);
    assertOwned(vm);
    validateHypervisorConfig(config, vm.disks.length);
    const updated = { ...vm, hypervisorConfig: Buffer.from(config).toString('base64') };
    await ctx.catalog.commit((tx) => tx.putVm(updated), { durable: true });
    return updated;
  });
}

/** Deletes a VM, its snapshots and its live writes. Chunks are freed by the next GC. */
export async function deleteVm(ctx: EngineContext, nameOrId: string): Promise<VmRecord> {
  const vm = resolveVm(ctx, nameOrId);
  await ctx.vmLock(vm.id).exclusive(async () => {
    const snaps = ctx.catalog.snapshots(vm.id);
    await ctx.catalog.commit(
      (tx) => {
        for (const s of snaps) tx.deleteSnapshot(vm.id, s.id);
        tx.clearLiveWrites(vm.id);
        tx.clearReplicationState(vm.id);
        tx.deleteVm(vm.id);
      },
      { durable: true },
    );
    ctx.live.forget(vm.id);
  });
  return vm;
}

export function diskOf(vm: VmRecord, index: number): VmRecord['disks'][number] {
  const d = vm.disks[index];
  if (!Number.isInteger(index) || !d) {
    throw new NotFoundError('disk', `${vm.name}/${index}`, `VM '${vm.name}' has no vDisk ${index} (it has ${vm.disks.length}: 0..${vm.disks.length - 1})`);
  }
  return d;
}
