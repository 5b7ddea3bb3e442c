/** Sites, links and replication: `vmferry site …`, `vmferry link set-rate`, `vmferry replicate …`. */
import type { Command } from 'commander';
import Bottleneck from 'bottleneck';
import { formatBytes, formatRate, parseCalendar, rateAt, InvalidArgumentError } from '@vmferry/core';
import type { NodeInfoView, SiteView, StorageNodeClient } from '@vmferry/grpc-edge';
import type { SiteCallOptions } from '@vmferry/replicator';
import { tlsFor, withTlsFlags, type TlsFlags } from './tls-files.js';
import { printFields, printJson, printTable } from './output.js';
import { byteProgress } from './progress.js';
import { reworded } from './failures.js';
import { wholeNumberFlag } from './flags.js';

interface Globals {
  node: string;
  json: boolean;
}

async function withNode<T>(g: Globals, fn: (client: StorageNodeClient) => Promise<T>): Promise<T> {
  const { connect, describeError } = await import('./client.js');
  const client = connect(g.node);
  try {
    return await fn(client);
  } catch (e) {
    throw reworded(e, describeError(e, g.node));
  } finally {
    client.close();
  }
}

const sitesOf = (c: StorageNodeClient): Promise<SiteView[]> => c.listSites();
const infoOf = (c: StorageNodeClient): Promise<NodeInfoView> => c.getNodeInfo();

function siteRow(s: SiteView): Record<string, string> {
  return { name: s.name, replication: s.replicationAddress, identity: s.identity, node: s.nodeAddress, bind: s.bindAddress, rate: s.rate || 'unlimited' };
}

interface Target {
  readonly site: string;
  readonly nodeAddress: string;
  readonly bindAddress: string;
}

/** What a pull and a plan of `ref` from site `from` into target `t` (its node: `node`) both pass. */
function siteCall(node: StorageNodeClient, t: Target, from: string, ref: string, flags: TlsFlags): SiteCallOptions {
  return {
    node,
    nodeAddress: t.nodeAddress,
    localSite: t.site,
    sourceSite: from,
    ref,
    tls: tlsFor(t.site, flags),
    bindFor: () => t.bindAddress || undefined,
  };
}

/** Where each target site's node is, as the --node node knows it (its own site, or a site record). */
async function resolveTargets(g: Globals, names: string[], bind?: string): Promise<Target[]> {
  return withNode(g, async (c) => {
    const info = await infoOf(c);
    const sites = await sitesOf(c);
    return names.map((name) => {
      if (name === info.site) return { site: name, nodeAddress: g.node, bindAddress: bind ?? '' };
      const s = sites.find((x) => x.name === name);
      if (!s?.nodeAddress)
        throw new InvalidArgumentError(
          `target site '${name}' is not this node's site (${info.site}) and has no node address here: vmferry site add ${name} --node-address HOST:PORT`,
        );
      return { site: name, nodeAddress: s.nodeAddress, bindAddress: bind ?? s.bindAddress };
    });
  });
}

export function registerReplicationCommands(program: Command): void {
  const site = program.command('site').description('peer sites: replication address, certificate identity, node, throttle');
  site
    .command('add <name>')
    .description('add or update a peer site')
    .option('--replication <host:port>', "the site's replication endpoint")
    .option('--identity <cn>', "the site's certificate identity (subject CN)")
    .option('--node-address <host:port>', "the site's storage node API (to replicate to it)")
    .option('--bind <address>', 'local source address to bind when this site pulls (its replication NIC)')
    .option('--rate <calendar>', "throttle calendar for pulls from it, e.g. 'Mon-Fri 08:00-18:00 50Mbit; * 400Mbit'")
    .action(async (name: string, o: { replication?: string; identity?: string; nodeAddress?: string; bind?: string; rate?: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      if (o.rate) parseCalendar(o.rate);
      const s = await withNode(g, (c) =>
        c.putSite({
          name,
          replicationAddress: o.replication ?? '',
          identity: o.identity ?? '',
          nodeAddress: o.nodeAddress ?? '',
          bindAddress: o.bind ?? '',
          rate: o.rate ?? '',
        }),
      );
      if (g.json) printJson(s);
      else printTable([siteRow(s)]);
    });
  site.command('list').action(async (_o: unknown, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    const sites = await withNode(g, sitesOf);
    if (g.json) printJson(sites);
    else printTable(sites.map(siteRow));
  });
  site.command('remove <name>').action(async (name: string, _o: unknown, cmd: Command) => {
    const g = cmd.optsWithGlobals<Globals>();
    await withNode(g, (c) => c.deleteSite(name));
    if (g.json) printJson({ removed: name });
    else printFields({ removed: name });
  });

  program
    .command('link')
    .description('link throttling')
    .command('set-rate <site> <calendar>')
    .description("set the throttle calendar for pulls from SITE, e.g. 'Mon-Fri 08:00-18:00 50Mbit; * 400Mbit' (running transfers follow within a second)")
    .action(async (name: string, calendar: string, _o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      const cal = parseCalendar(calendar);
      const s = await withNode(g, async (c) => {
        const found = (await sitesOf(c)).find((x) => x.name === name);
        if (!found) throw new InvalidArgumentError(`site '${name}' is not known here (vmferry site add ${name} …)`);
        return c.putSite({ ...found, rate: calendar });
      });
      if (g.json) printJson({ ...s, rateNow: rateAt(cal, new Date()) });
      else printFields({ site: s.name, calendar: s.rate, 'rate now': formatRate(rateAt(cal, new Date())) });
    });

  const replicate = withTlsFlags(
    program
      .command('replicate')
      .description('pull a VM snapshot from a site to one or more sites; only missing chunks move')
      .argument('<ref>', 'VM (newest snapshot) or VM@SNAPSHOT')
      // Checked in the action: required options here would also be demanded of `replicate plan`.
      .option('--from <site>', 'source site (required)')
      .option('--to <sites>', 'target site(s), comma-separated (required)'),
    'folder with ca.crt and SITE.crt/SITE.key for each target site',
  )
    .option('--bind <address>', 'local source address for the pull (default: the target site record)')
    .option('--streams <n>', 'parallel chunk streams per session', '4')
    .option('--sessions-per-link <n>', 'sessions at once on one source link', '2')
    .action(async (ref: string, opts: TlsFlags & { from?: string; to?: string; bind?: string; streams: string; sessionsPerLink: string }, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      const { from, to } = opts;
      if (!from || !to) throw new InvalidArgumentError('replicate needs --from SITE and --to SITE[,SITE…]');
      const o = { ...opts, from, to };
      // Checked before anything connects: `--streams x` would otherwise walk nothing.
      const streams = wholeNumberFlag('--streams', o.streams, 1, 64);
      const sessionsPerLink = wholeNumberFlag('--sessions-per-link', o.sessionsPerLink, 1, 1024);
      const r = await import('@vmferry/replicator');
      // The edge loads grpc-js: imported on use, so `vmferry node` can start telemetry first.
      const edge = await import('@vmferry/grpc-edge');
      const targets = await resolveTargets(
        g,
        o.to
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean),
        o.bind,
      );
      const fullRef = ref.includes('@') ? ref : `${ref}@latest`;
      // Sessions per source link are limited and ordered by bottleneck; bytes by the link's bucket.
      const limiter = new Bottleneck({ maxConcurrent: sessionsPerLink });
      const results = await Promise.all(
        targets.map((t) =>
          limiter.schedule(async () => {
            const node = (await import('./client.js')).connect(t.nodeAddress);
            const progress = byteProgress(`${o.from}→${t.site}`, 1, false);
            let bar = progress;
            try {
              const res = await r.replicateFromSite({
                ...siteCall(node, t, o.from, fullRef, o),
                streams,
                onProgress: (p) => {
                  if (p.phase === 'data' && p.bytesTotal > 0 && bar === progress) bar = byteProgress(`${o.from}→${t.site}`, p.bytesTotal, !g.json);
                  bar.update(p.bytesDone);
                },
              });
              return { target: t.site, ...res, snapshot: edge.snapshotView(res.snapshot, res.snapshot.vmName) };
            } catch (e) {
              const { describeError } = await import('./client.js');
              // A session talks to two servers: name both when one cannot be reached.
              throw reworded(
                e,
                `${o.from} → ${t.site}: ${describeError(e, t.nodeAddress, `site ${o.from}'s replication endpoint or site ${t.site}'s node (${t.nodeAddress})`)}`,
              );
            } finally {
              bar.stop();
              node.close();
            }
          }),
        ),
      );
      if (g.json) {
        printJson(results.length === 1 ? results[0] : results);
        return;
      }
      printTable(
        results.map((x) => ({
          target: x.target,
          snapshot: `${x.vmName}@${x.snapshot.id}`,
          moved: formatBytes(x.bytesReceived),
          chunks: x.chunksReceived,
          'tree nodes': x.nodesReceived,
          'already there': x.chunksSkipped,
          seconds: x.seconds.toFixed(2),
        })),
      );
    });

  withTlsFlags(
    replicate
      .command('plan <ref>')
      .description('pre-flight: exactly which bytes are missing at the target, and the ETA under the link calendar')
      // Options given after `plan` may be parsed by `replicate` itself: read them merged.
      .option('--from <site>', 'source site (required)')
      .option('--to <site>', 'target site (required)'),
  )
    .option('--bind <address>')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<Globals>();
      const merged = cmd.optsWithGlobals<TlsFlags & { from?: string; to?: string; bind?: string }>();
      if (!merged.from || !merged.to) throw new InvalidArgumentError('replicate plan needs --from SITE and --to SITE');
      const o = { ...merged, from: merged.from, to: merged.to };
      const r = await import('@vmferry/replicator');
      const [t] = await resolveTargets(g, [o.to], o.bind);
      if (!t) throw new InvalidArgumentError('no target site');
      const node = (await import('./client.js')).connect(t.nodeAddress);
      try {
        const plan = await r.planFromSite(siteCall(node, t, o.from, ref.includes('@') ? ref : `${ref}@latest`, o));
        if (g.json) {
          printJson({ from: o.from, to: t.site, ...plan });
          return;
        }
        printFields({
          snapshot: `${plan.vmName}@${plan.snapshotId}`,
          route: `${o.from} → ${t.site}`,
          'missing chunks': `${plan.missingChunks} (${formatBytes(plan.missingBytes)} stored/compressed)`,
          'already at target': `${plan.presentChunks} chunks`,
          'tree nodes to move': `${plan.treeNodes} (${formatBytes(plan.treeNodeBytes)})`,
          'total to move': formatBytes(plan.totalBytes),
          'link calendar': plan.rateCalendar,
          eta: plan.etaSeconds === null ? 'unthrottled link: no estimate' : `${Math.ceil(plan.etaSeconds)} s`,
        });
      } finally {
        node.close();
      }
    });
}
