/** Every NATS name vmferry uses: streams, subjects, KV buckets and keys. */
export const JOBS_STREAM = 'VMFERRY_JOBS';
export const EVENTS_STREAM = 'VMFERRY_EVENTS';

export const snapshotJobSubject = (site: string): string => `vmferry.jobs.snapshot.${site}`;
export const replicateJobSubject = (targetSite: string): string => `vmferry.jobs.replicate.${targetSite}`;
export const verifyJobSubject = (site: string): string => `vmferry.jobs.verify.${site}`;
/**
 * Events carry the site that published them (its JetStream domain; `shared` on a coordination
 * plane that serves every site), so another site can source exactly one site's events.
 */
export const SHARED_ORIGIN = 'shared';
export const eventSubject = (kind: string, origin: string = SHARED_ORIGIN): string => `vmferry.events.${origin}.${kind}`;
/** Every event one site published. */
export const eventsOf = (origin: string): string => `vmferry.events.${origin}.>`;
/** What each stream holds: every job subject, every event subject. */
export const JOBS_SUBJECTS = 'vmferry.jobs.>';
export const EVENTS_SUBJECTS = 'vmferry.events.>';

/** Policies: key `default`, and `vm.<vmId>` for a VM's override. */
export const POLICY_BUCKET = 'vmferry-policies';
export const DEFAULT_POLICY_KEY = 'default';
export const vmPolicyKey = (vmId: string): string => `vm.${vmId}`;

/**
 * Inventory: `<site>.vm.<vmId>` → VmEntry; `<site>.site` → SiteEntry. The site comes first so
 * that one filter (`<site>.>`) takes everything a site published into another site's copy.
 */
export const REGISTRY_BUCKET = 'vmferry-registry';
export const registryVmKey = (site: string, vmId: string): string => `${site}.vm.${vmId}`;
export const registrySiteKey = (site: string): string => `${site}.site`;

/** Leader lease for schedulers (the bucket's TTL expires a dead leader's key). */
export const LEADER_BUCKET = 'vmferry-leader';
export const SCHEDULER_LEADER_KEY = 'scheduler';

/**
 * Replication state per (VM, target): `rpo.<vmId>.<targetSite>` → ReplicationState, written by
 * the target's replicator; the target site comes last so a source site can take exactly the
 * states one target wrote (`rpo.*.<target>`).
 */
export const STATE_BUCKET = 'vmferry-state';
export const rpoKey = (vmId: string, target: string): string => `rpo.${vmId}.${target}`;
/**
 * `scheduler.progress` → SchedulerProgress: the slot time of the leader's last complete tick,
 * so a new leader (after a failover or a full stop) can count the slots nobody published.
 */
export const SCHEDULER_PROGRESS_KEY = 'scheduler.progress';

/** Key filters: every VM entry of the registry, every site entry. */
export const REGISTRY_VM_KEYS = '*.vm.*';
export const REGISTRY_SITE_KEYS = '*.site';
/** Key filter: the registry's VM entries of one site. */
export const registrySiteVmKeys = (site: string): string => `${site}.vm.*`;
/** Whether a registry key is a site entry (`<site>.site`). */
export const isRegistrySiteKey = (key: string): boolean => key.split('.').length === 2 && key.endsWith('.site');
/** The site a `<site>.site` registry key names. */
export const siteOfRegistryKey = (key: string): string => key.slice(0, key.indexOf('.'));
/** `<site>.<vmId>` of a `<site>.vm.<vmId>` registry key; undefined for another kind of key. */
export const vmOfRegistryKey = (key: string): string | undefined => {
  const [site, kind, vmId, ...rest] = key.split('.');
  return kind === 'vm' && site && vmId && rest.length === 0 ? `${site}.${vmId}` : undefined;
};
/** The VM id of a `vm.<vmId>` policy key; undefined for another kind of key. */
export const vmOfPolicyKey = (key: string): string | undefined => (key.startsWith('vm.') ? key.slice('vm.'.length) : undefined);
