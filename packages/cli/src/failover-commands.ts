/**
 * `vmferry failover VM --to SITE` and `vmferry failback VM`: moving a VM's ownership between
 * sites (docs/design.md "Epochs and fencing"; the per-node steps are in storage-node/src/failover.ts).
 *
 * The order of a planned handover from site S to site T, and why it loses nothing and never has
 * two writers (packages/core/src/ownership.ts has the full argument):
 *  1. fence at S, naming T and epoch N+1: S refuses every write from that commit on, and its
 *     snapshot fenced-(N+1) holds every write S acknowledged;
 *  2. T pulls that snapshot (incremental: only what T lacks moves);
 *  3. promote at T at epoch N+1: T's live state becomes exactly that snapshot, writable.
 * A failure after 1 leaves the VM read-only at both sites (safe) and the command can simply be
 * run again: each step is idempotent (the fence, the pull, a promotion of an owned VM is refused).
 *
 * Unplanned (`failover` without --planned): T promotes its newest replica (or --snapshot) at
 * its epoch + 1. S is fenced when T can reach it (tried for a moment), else when it returns:
 * `vmferry failback` fences it first, and so does any replication from T into it.
 */
import type { Command } from 'commander';
import { formatBytes, InvalidArgumentError, FailedPreconditionError, NotFoundError } from '@vmferry/core';
import type { StorageNodeClient, VmView } from '@vmferry/grpc-edge';
import { tlsFor, withTlsFlags, type TlsFlags } from './tls-files.js';
import { printJson, printTable } from './output.js';
import { reworded } from './failures.js';

interface Globals {
  node: string;
  json: boolean;
}

interface SiteNode {
  readonly site: string;
  readonly address: string;
  readonly bind: string;
  readonly client: StorageNodeClient;
}

interface LibvirtFlags {
  libvirt?: boolean;
  libvirtUri?: string;
  nbd?: string;
}

interface Handover {
  readonly vm: string;
  readonly from: string;
  readonly to: string;
  readonly planned: boolean;
  readonly epoch: number;
  readonly snapshot: string;
  readonly bytesMoved: number;
  readonly chunksMoved: number;
  readonly seconds: number;
  readonly fencedAtSource: boolean;
  readonly nbdExport: string;
  readonly note: string;
  /** With --libvirt: the domain defined at the new owner. */
  readonly domain?: string;
}

/** Progress lines on stderr for people (not with --json). */
function stepper(g: Globals): (line: string) => void {
  return (line) => {
    if (!g.json) process.stderr.write(`${line}\n`);
  };
}

/** The node of `site` as the node at `via` knows it: itself, or its site record's node address. */
async function siteNode(via: StorageNodeClient, viaAddress: string, site: string): Promise<SiteNode> {
  const info = await via.getNodeInfo();
  if (info.site === site) return { site, address: viaAddress, bind: '', client: (await import('./client.js')).connect(viaAddress) };
  const rec = (await via.listSites()).find((s) => s.name === site);
  if (!rec) throw new NotFoundError('site', site, `site '${site}' is not known at site ${info.site} (vmferry --node ${viaAddress} site add ${site} …)`);
  if (!rec.nodeAddress) {
    throw new InvalidArgumentError(
      `site '${site}' has no node address at site ${info.site}: vmferry --node ${viaAddress} site add ${site} --node-address HOST:PORT`,
    );
  }
  return { site, address: rec.nodeAddress, bind: rec.bindAddress, client: (await import('./client.js')).connect(rec.nodeAddress) };
}

async function calling<T>(n: SiteNode, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const { describeError } = await import('./client.js');
    throw reworded(e, `${what} at site ${n.site}: ${describeError(e, n.address, `site ${n.site}'s node (${n.address})`)}`);
  }
}

const exportName = async (n: SiteNode, vm: string): Promise<string> => {
  const info = await n.client.getNodeInfo();
  if (info.nbdAddress) return `nbd://${info.nbdAddress}/${vm}/0`;
  if (info.nbdSocket) return `nbd+unix:///${vm}/0?socket=${info.nbdSocket}`;
  return `${vm}/0 (the node serves no NBD)`;
};

/** Steps 1–3 of the header: fence at `from`, pull the fenced snapshot into `to`, promote it there. */
async function plannedHandover(vm: string, from: SiteNode, to: SiteNode, tls: TlsFlags, step: (l: string) => void): Promise<Handover> {
  const started = performance.now();
  const atSource = await calling(from, `VM '${vm}'`, () => from.client.getVm(vm));
  if (atSource.replicaOf) throw new FailedPreconditionError(`VM '${vm}' at site ${from.site} is a replica of ${atSource.replicaOf}, not the owned copy`);
  const atTarget = await calling(to, `VM '${vm}'`, () => to.client.getVm(vm));
  if (atTarget.id !== atSource.id)
    throw new FailedPreconditionError(`VM '${vm}' at site ${to.site} is another VM (id ${atTarget.id}, at ${from.site} ${atSource.id})`);
  // An already fenced source (a rerun after a failure past step 1) keeps the epoch it was given.
  const epoch = atSource.fencedBy === to.site ? atSource.fencedEpoch : Math.max(atSource.epoch, atSource.fencedEpoch, atTarget.epoch, atTarget.fencedEpoch) + 1;
  step(`1/3 fencing ${vm} at ${from.site} (owner from now: ${to.site}, epoch ${epoch}); taking its final snapshot`);
  const fence = await calling(from, `fencing VM '${vm}'`, () => from.client.fenceVm({ vm, ownerSite: to.site, ownerEpoch: epoch }));
  const snap = fence.snapshot?.id ?? '';
  step(`2/3 replicating ${vm}@${fence.snapshot?.label ?? snap} ${from.site} → ${to.site}`);
  const r = await import('@vmferry/replicator');
  let moved = { bytesReceived: 0, chunksReceived: 0 };
  try {
    moved = await r.replicateFromSite({
      node: to.client,
      nodeAddress: to.address,
      localSite: to.site,
      sourceSite: from.site,
      ref: `${vm}@${snap}`,
      tls: tlsFor(to.site, tls),
      bindFor: () => to.bind || undefined,
    });
  } catch (e) {
    const { describeError } = await import('./client.js');
    throw reworded(
      e,
      `${from.site} → ${to.site}: ${describeError(e, to.address)}. ${vm} is fenced at ${from.site} and not yet promoted at ${to.site}: run the command again`,
    );
  }
  step(`3/3 promoting ${vm} at ${to.site} (epoch ${epoch}); moved ${formatBytes(moved.bytesReceived)}`);
  const promoted = await calling(to, `promoting VM '${vm}'`, () => to.client.promoteVm({ vm, snapshot: snap, epoch }));
  return {
    vm,
    from: from.site,
    to: to.site,
    planned: true,
    epoch: promoted.epoch,
    snapshot: `${vm}@${fence.snapshot?.label ?? snap}`,
    bytesMoved: moved.bytesReceived,
    chunksMoved: moved.chunksReceived,
    seconds: (performance.now() - started) / 1000,
    fencedAtSource: true,
    nbdExport: await exportName(to, vm),
    note: 'zero data loss: the promoted state is the fenced source’s final snapshot',
  };
}

/** Tries `fn` for at most `ms`; false when it failed or took longer. */
async function briefly(fn: () => Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([fn().then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

async function unplannedFailover(
  vm: string,
  target: VmView,
  to: SiteNode,
  via: StorageNodeClient,
  viaAddress: string,
  snapshot: string | undefined,
  step: (l: string) => void,
): Promise<Handover> {
  const started = performance.now();
  const source = target.replicaOf || target.fencedBy;
  step(`1/2 promoting ${vm} at ${to.site} from ${snapshot ? `snapshot ${snapshot}` : 'its newest replica'} (source ${source} not consulted)`);
  // The one the node will choose: named, or the newest replicated (storage-node failover.ts).
  const replicated = (await to.client.listSnapshots(vm)).filter((s) => s.origin.startsWith('replica:'));
  const chosen = snapshot ?? (replicated[replicated.length - 1]?.label || replicated[replicated.length - 1]?.id || '?');
  const promoted = await calling(to, `promoting VM '${vm}'`, () => to.client.promoteVm({ vm, snapshot: snapshot ?? '', epoch: 0 }));
  step(`2/2 telling ${source} (if reachable) that ${to.site} owns ${vm} at epoch ${promoted.epoch}`);
  let fenced = false;
  try {
    const src = await siteNode(via, viaAddress, source);
    try {
      fenced = await briefly(() => src.client.fenceVm({ vm, ownerSite: to.site, ownerEpoch: promoted.epoch }), 3000);
    } finally {
      src.client.close();
    }
  } catch {
    fenced = false;
  }
  return {
    vm,
    from: source,
    to: to.site,
    planned: false,
    epoch: promoted.epoch,
    snapshot: `${vm}@${chosen}`,
    bytesMoved: 0,
    chunksMoved: 0,
    seconds: (performance.now() - started) / 1000,
    fencedAtSource: fenced,
    nbdExport: await exportName(to, vm),
    note: fenced
      ? `${source} fenced now`
      : `${source} unreachable: its copy is fenced when it returns (vmferry failback, or any replication from ${to.site} into it); its writes after the promoted snapshot are kept there as a superseded-EPOCH snapshot, not in the VM's history`,
  };
}

/** With --libvirt: defines the VM at `at` from its domain XML template (the old site's domain is left alone). */
async function defineAt(at: SiteNode, h: Handover, o: LibvirtFlags, step: (l: string) => void): Promise<Handover> {
  if (!o.libvirt) return h;
  const { defineVms, nbdEndpoint } = await import('./hypervisor-commands.js');
  step(`defining ${h.vm} in libvirt at ${at.site}`);
  try {
    const [d] = await defineVms([await at.client.getVm(h.vm)], nbdEndpoint(await at.client.getNodeInfo(), o.nbd), o.libvirtUri);
    return d ? { ...h, domain: d.domain } : h;
  } catch (e) {
    // The handover itself is done: say so, so nobody reruns it for a libvirt problem.
    throw reworded(
      e,
      `${h.vm} is owned by ${at.site} now (epoch ${h.epoch}, served at ${h.nbdExport}), but defining it in libvirt failed: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

const withLibvirtFlags = (cmd: Command): Command =>
  cmd
    .option('--libvirt', 'define the VM in libvirt at the new owner (virsh define of its domain XML template, filled in)')
    .option('--libvirt-uri <uri>', 'libvirt connection URI for virsh -c (qemu:///system, …)')
    .option('--nbd <tcp|unix>', "with --libvirt: how the hypervisor reaches the node's NBD server");

function print(g: Globals, h: Handover): void {
  if (g.json) {
    printJson(h);
    return;
  }
  printTable([
    {
      vm: h.vm,
      from: h.from,
      to: h.to,
      kind: h.planned ? 'planned' : 'unplanned',
      epoch: h.epoch,
      snapshot: h.snapshot,
      moved: formatBytes(h.bytesMoved),
      'source fenced': h.fencedAtSource ? 'yes' : 'not yet',
      export: h.nbdExport,
      ...(h.domain === undefined ? {} : { domain: h.domain }),
      seconds: h.seconds.toFixed(2),
    },
  ]);
  process.stdout.write(`${h.note}\n`);
}

async function withVia<T>(g: Globals, fn: (via: StorageNodeClient) => Promise<T>): Promise<T> {
  const { connect, describeError } = await import('./client.js');
  const via = connect(g.node);
  try {
    return await fn(via);
  } catch (e) {
    throw reworded(e, describeError(e, g.node));
  } finally {
    via.close();
  }
}

export function registerFailoverCommands(program: Command): void {
  withTlsFlags(
    withLibvirtFlags(program.command('failover <vm>'))
      .description('make SITE own VM: planned (fence, final snapshot, replicate, promote: zero loss) or, the source lost, promote its newest replica')
      .option('--to <site>', 'the site that takes the VM over (required)')
      .option('--planned', 'the source is up: hand over with zero data loss', false)
      .option('--snapshot <s>', 'unplanned: the replicated snapshot to promote (default: the newest)'),
    'folder with ca.crt and SITE.crt/SITE.key of the target site (planned: it pulls the final snapshot)',
  ).action(async (vm: string, o: TlsFlags & LibvirtFlags & { to?: string; planned: boolean; snapshot?: string }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    if (!o.to) throw new InvalidArgumentError('failover needs --to SITE');
    if (o.planned && o.snapshot) throw new InvalidArgumentError('--snapshot is for an unplanned failover; a planned one promotes the final snapshot');
    const toSite = o.to;
    const step = stepper(g);
    const h = await withVia(g, async (via) => {
      const to = await siteNode(via, g.node, toSite);
      try {
        const target = await calling(to, `VM '${vm}'`, () => to.client.getVm(vm));
        const source = target.replicaOf || target.fencedBy;
        if (!source) throw new FailedPreconditionError(`VM '${vm}' is owned by site ${toSite} already (epoch ${target.epoch}); nothing to fail over`);
        if (!o.planned) return await defineAt(to, await unplannedFailover(vm, target, to, via, g.node, o.snapshot, step), o, step);
        tlsFor(toSite, o);
        const from = await siteNode(via, g.node, source);
        try {
          return await defineAt(to, await plannedHandover(vm, from, to, o, step), o, step);
        } finally {
          from.client.close();
        }
      } finally {
        to.client.close();
      }
    });
    print(g, h);
  });

  withTlsFlags(
    withLibvirtFlags(program.command('failback <vm>'))
      .description(
        'return VM to its home site (--node): fence the home copy, then a planned failover back; only what changed since the newest common snapshot moves',
      )
      .option('--from <site>', 'the site owning the VM now (default: the one the home copy is fenced by)'),
    'folder with ca.crt and SITE.crt/SITE.key of the home site (it pulls)',
  ).action(async (vm: string, o: TlsFlags & LibvirtFlags & { from?: string }, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const step = stepper(g);
    const h = await withVia(g, async (via) => {
      const info = await via.getNodeInfo();
      const home = await siteNode(via, g.node, info.site);
      try {
        const atHome = await calling(home, `VM '${vm}'`, () => home.client.getVm(vm));
        if (atHome.replicaOf)
          throw new FailedPreconditionError(
            `VM '${vm}' at site ${home.site} is a replica of ${atHome.replicaOf}: use vmferry failover ${vm} --to ${home.site}`,
          );
        const ownerSite = o.from ?? (atHome.fencedBy || undefined);
        if (!ownerSite) {
          throw new FailedPreconditionError(
            `VM '${vm}' at site ${home.site} is not fenced: it may still be owned here. Name the site that owns it now with --from SITE`,
          );
        }
        tlsFor(home.site, o);
        const owner = await siteNode(via, g.node, ownerSite);
        try {
          const atOwner = await calling(owner, `VM '${vm}'`, () => owner.client.getVm(vm));
          if (atOwner.replicaOf || atOwner.fencedBy) {
            throw new FailedPreconditionError(
              `VM '${vm}' is not owned at site ${ownerSite} (${atOwner.replicaOf ? `replica of ${atOwner.replicaOf}` : `fenced by ${atOwner.fencedBy}`})`,
            );
          }
          if (atHome.fencedBy !== ownerSite || atHome.fencedEpoch !== atOwner.epoch) {
            // The home copy learns it is stale before anything else (an unplanned failover away).
            step(`0/3 fencing the stale copy of ${vm} at ${home.site} (owner ${ownerSite}, epoch ${atOwner.epoch})`);
            await calling(home, `fencing VM '${vm}'`, () => home.client.fenceVm({ vm, ownerSite, ownerEpoch: atOwner.epoch }));
          }
          return await defineAt(home, await plannedHandover(vm, owner, home, o, step), o, step);
        } finally {
          owner.client.close();
        }
      } finally {
        home.client.close();
      }
    });
    print(g, h);
  });
}
