/**
 * A live view of policies and the VM inventory, kept current by KV watches (not polling).
 *
 * Stored policies are parsed strictly (policyInForce): a bad one never becomes the policy in
 * force; a `policy.rejected` event and a log line name the key, the revision, every problem
 * and what is in force instead.
 */
import { DEFAULT_POLICY, parseStoredOverride, parseStoredPolicy, type ProtectionPolicy, type VmPolicyOverride } from '@vmferry/core';
import {
  DEFAULT_POLICY_KEY,
  describeRefusal,
  policyInForce,
  publishEvent,
  siteOfRegistryKey,
  vmOfPolicyKey,
  isRegistrySiteKey,
  vmOfRegistryKey,
  type Coordination,
  type VmEntry,
} from '@vmferry/nats';
import type { KV, KvWatchEntry } from '@nats-io/kv';

export class PolicyView {
  defaultPolicy: ProtectionPolicy = DEFAULT_POLICY;
  readonly overrides = new Map<string, VmPolicyOverride>();
  /** `<site>.<vmId>` → entry. */
  readonly vms = new Map<string, VmEntry>();
  /** Sites with a storage node in the registry (`site.<site>`): where scheduled verify runs. */
  readonly sites = new Set<string>();
  private stops: (() => void)[] = [];
  private readyResolvers: (() => void)[] = [];
  private pendingInitial = 2;

  constructor(
    private readonly c: Coordination,
    private readonly log: (line: string) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    const ready = new Promise<void>((r) => this.readyResolvers.push(r));
    await this.watch(this.c.policies, async (e) => {
      if (e.key === DEFAULT_POLICY_KEY) {
        this.defaultPolicy = (await this.inForce(e, parseStoredPolicy)) ?? DEFAULT_POLICY;
        return;
      }
      const vmId = vmOfPolicyKey(e.key);
      if (vmId === undefined) return;
      const o = await this.inForce(e, parseStoredOverride);
      if (o === undefined) this.overrides.delete(vmId);
      else this.overrides.set(vmId, o);
    });
    await this.watch(this.c.registry, (e) => {
      if (isRegistrySiteKey(e.key)) {
        if (e.operation === 'PUT') this.sites.add(siteOfRegistryKey(e.key));
        else this.sites.delete(siteOfRegistryKey(e.key));
        return;
      }
      // Keyed by site and id: a replica at another site has the same VM id as its source.
      const id = vmOfRegistryKey(e.key);
      if (id === undefined) return;
      if (e.operation === 'PUT') this.vms.set(id, JSON.parse(e.string()) as VmEntry);
      else this.vms.delete(id);
    });
    await ready;
  }

  /** The value in force after entry `e` (policyInForce); a refusal is logged and published as policy.rejected. */
  private async inForce<T>(e: KvWatchEntry, parse: (text: string) => T): Promise<T | undefined> {
    const r = await policyInForce(this.c.policies, e, parse);
    if (r.refusal) {
      const { key, revision, problems, inForce } = r.refusal;
      this.log(describeRefusal(r.refusal));
      await publishEvent(this.c, 'policy.rejected', { key, revision, problems, inForce }, `policy.rejected.${key}.${revision}`).catch((err: unknown) =>
        this.log(`policy.rejected event not published: ${(err as Error).message}`),
      );
    }
    return r.value;
  }

  private async watch(kv: KV, apply: (e: KvWatchEntry) => void | Promise<void>): Promise<void> {
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
        try {
          await apply(e);
        } catch (err) {
          this.log(`watch of ${e.key}: ${(err as Error).message}`);
        }
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
