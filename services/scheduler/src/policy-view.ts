/** A live view of policies and the VM inventory, kept current by KV watches (not polling). */
import { DEFAULT_POLICY, type ProtectionPolicy, type VmPolicyOverride } from '@vmferry/core';
import { DEFAULT_POLICY_KEY, vmOfPolicyKey, vmOfRegistryKey, type Coordination, type VmEntry } from '@vmferry/nats';
import type { KV } from '@nats-io/kv';

export class PolicyView {
  defaultPolicy: ProtectionPolicy = DEFAULT_POLICY;
  readonly overrides = new Map<string, VmPolicyOverride>();
  /** `<site>.<vmId>` → entry. */
  readonly vms = new Map<string, VmEntry>();
  private stops: (() => void)[] = [];
  private readyResolvers: (() => void)[] = [];
  private pendingInitial = 2;

  constructor(private readonly c: Coordination) {}

  async start(): Promise<void> {
    const ready = new Promise<void>((r) => this.readyResolvers.push(r));
    await this.watch(this.c.policies, (key, value) => {
      if (key === DEFAULT_POLICY_KEY) this.defaultPolicy = value === undefined ? DEFAULT_POLICY : (JSON.parse(value) as ProtectionPolicy);
      else {
        const vmId = vmOfPolicyKey(key);
        if (vmId === undefined) return;
        if (value === undefined) this.overrides.delete(vmId);
        else this.overrides.set(vmId, JSON.parse(value) as VmPolicyOverride);
      }
    });
    await this.watch(this.c.registry, (key, value) => {
      // Keyed by site and id: a replica at another site has the same VM id as its source.
      const id = vmOfRegistryKey(key);
      if (id === undefined) return;
      if (value === undefined) this.vms.delete(id);
      else this.vms.set(id, JSON.parse(value) as VmEntry);
    });
    await ready;
  }

  private async watch(kv: KV, apply: (key: string, value: string | undefined) => void): Promise<void> {
    const empty = (await kv.status()).values === 0;
    const iter = await kv.watch();
    let initialDone = false;
    const markReady = (): void => {
      if (initialDone) return;
      initialDone = true;
      if (--this.pendingInitial === 0) for (const r of this.readyResolvers) r();
    };
    // An empty bucket sends no initial entries: the watch is "ready" once its backlog is read.
    if (empty) markReady();
    void (async () => {
      for await (const e of iter) {
        apply(e.key, e.operation === 'PUT' ? e.string() : undefined);
        if (e.delta === 0) markReady();
      }
    })();
    setTimeout(markReady, 2000).unref();
    this.stops.push(() => iter.stop());
  }

  stop(): void {
    for (const s of this.stops) s();
  }
}
