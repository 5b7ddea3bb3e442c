import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { formatBytes, parseSize, InternalError, InvalidArgumentError } from '@vmferry/core';
import type { SnapshotView, VerifyReportView, VmView } from '@vmferry/grpc-edge';
import { printFields, printJson, printTable } from './output.js';
import { byteProgress } from './progress.js';
import { withClient } from './with-client.js';
import { checkLibvirtClone, defineVms, nbdEndpoint, printDefined, registerHypervisorCommands } from './hypervisor-commands.js';

/** uint32 on the wire: a larger number would be cut short by the serializer, not refused. */
const MAX_U32 = 2 ** 32 - 1;

function parseIndex(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) > MAX_U32) throw new InvalidArgumentError(`'${text}' is not a vDisk index (0, 1, …)`);
  return Number(text);
}

function parseCount(text: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_U32) throw new InvalidArgumentError(`'${text}' is not a count (1 or more)`);
  return Number(text);
}

/** Any byte offset (partial blocks are read-modify-written), below 2^53 like every size. */
function parseOffset(text: string): number {
  return parseSize(text);
}

const when = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

function vmRow(vm: VmView): Record<string, string | number> {
  return {
    name: vm.name,
    id: vm.id,
    disks: vm.disks.map((d) => formatBytes(d.size)).join(', '),
    snapshots: vm.snapshotCount,
    'cloned from': vm.clonedFrom ? `${vm.clonedFrom.vmName}@${vm.clonedFrom.snapshotId}` : '',
  };
}

function snapshotRow(s: SnapshotView): Record<string, string | number> {
  return { id: s.id, label: s.label, created: when(s.createdAtMs), consistency: s.consistency, origin: s.origin, 'dirty blocks': s.dirtyBlocks };
}

/** " (referenced by a, b)" for a missing chunk's referrers, when the node names any. */
const refsNote = (refs: readonly string[] | undefined): string => (refs && refs.length > 0 ? ` (referenced by ${refs.join(', ')})` : '');

export function registerCommands(program: Command): void {
  program
    .command('node')
    .description('run a storage node (with global --nats URL: join the coordination plane)')
    .requiredOption('--data <dir>', 'data folder (created if missing)')
    .option('--listen <host:port>', 'API address; beyond loopback it needs --api-token-file or --api-tls', '127.0.0.1:7400')
    .option('--site <name>', "this site's name")
    .option('--max-snapshots <n>', 'snapshots per VM before creating one fails (default 1024)')
    .option('--prometheus-port <port>', 'serve Prometheus metrics on 127.0.0.1:PORT (shorthand for --metrics-listen)')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics at http://HOST:PORT/metrics (env VMFERRY_METRICS_LISTEN; none by default)')
    .option('--replication-listen <host:port>', 'serve the read-only replication endpoint (mTLS) here')
    .option('--tls-cert <file>', "this site's certificate (PEM)")
    .option('--tls-key <file>', "this site's private key (PEM)")
    .option('--tls-ca <file>', 'the CA that signs peer sites (PEM)')
    .option('--hypervisors <file>', 'JSON: per VM name (or "*") a quiesce adapter: {"type":"qmp","socket":…} or {"type":"exec","freeze":…,"thaw":…}')
    .option(
      '--nbd-listen <host:port>',
      'serve vDisks over NBD here (exports VM/DISK, VM@SNAPSHOT/DISK); with --tls-* TLS and a client certificate are required, without them loopback only',
    )
    .option('--nbd-socket <path>', 'serve vDisks over NBD on this Unix socket (plaintext)')
    .option('--nbd-clients <names>', 'certificate names (CN) allowed on the TLS NBD listener besides this site, comma-separated')
    .option('--api-token-file <file>', 'require this bearer token (file, mode 600, ≥ 16 characters) on every API call (env VMFERRY_API_TOKEN_FILE)')
    .option(
      '--api-tls',
      'serve the API over mTLS with --tls-cert/--tls-key/--tls-ca: client certificates named this site or --api-clients (env VMFERRY_API_TLS=1)',
    )
    .option('--api-clients <names>', 'certificate names (CN) allowed on the mTLS API besides this site, comma-separated (env VMFERRY_API_CLIENTS)')
    .option('--recover-wal', 'do not start: discard a damaged write-ahead log tail, print the VMs and snapshots lost, exit')
    .action(
      async (
        opts: {
          data: string;
          listen: string;
          recoverWal?: boolean;
          site?: string;
          maxSnapshots?: string;
          prometheusPort?: string;
          metricsListen?: string;
          replicationListen?: string;
          tlsCert?: string;
          tlsKey?: string;
          tlsCa?: string;
          hypervisors?: string;
          nbdListen?: string;
          nbdSocket?: string;
          nbdClients?: string;
          apiTokenFile?: string;
          apiTls?: boolean;
          apiClients?: string;
        },
        cmd: Command,
      ) => {
        // --nats is global (the coordination commands share it): named here, the node joins NATS.
        const { nats, json } = cmd.optsWithGlobals<{ nats?: string; json?: boolean }>();
        if (opts.recoverWal) {
          const { recoverWalCommand } = await import('./recover-wal.js');
          await recoverWalCommand(opts.data, json === true);
          return;
        }
        const { configFromEnv, runStorageNode } = await import('@vmferry/storage-node');
        const config = configFromEnv({
          dataDir: opts.data,
          listen: opts.listen,
          site: opts.site,
          maxSnapshotsPerVm: opts.maxSnapshots,
          prometheusPort: opts.prometheusPort,
          metricsListen: opts.metricsListen,
          replicationListen: opts.replicationListen,
          tlsCert: opts.tlsCert,
          tlsKey: opts.tlsKey,
          tlsCa: opts.tlsCa,
          nats,
          hypervisors: opts.hypervisors,
          nbdListen: opts.nbdListen,
          nbdSocket: opts.nbdSocket,
          nbdClients: opts.nbdClients,
          apiTokenFile: opts.apiTokenFile,
          apiTls: opts.apiTls,
          apiClients: opts.apiClients,
        });
        const node = await runStorageNode(config, (line) => process.stderr.write(`${line}\n`));
        let stopping = false;
        const stop = (): void => {
          if (stopping) return;
          stopping = true;
          process.stderr.write('stopping storage node\n');
          node.stop().then(
            () => process.exit(0),
            (e: unknown) => {
              process.stderr.write(`vmferry: error while stopping: ${String(e)}\n`);
              process.exit(1);
            },
          );
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      },
    );

  const vm = program.command('vm').description('create, import, list, show and delete VMs; their hypervisor config templates');
  vm.command('create <name>')
    .description('create a VM with empty vDisks')
    .requiredOption('--disk <size>', 'a vDisk size (repeat for more vDisks)', (v: string, acc: string[]) => [...acc, v], [])
    .option('--block-size <size>', 'block size, a power of two from 4K to 4M', '64K')
    .option('--config <file>', 'hypervisor config file kept with the VM (VMX, libvirt XML, …)')
    .action(
      withClient(async (client, g, name: string, opts: { disk: string[]; blockSize: string; config?: string }) => {
        const disks = opts.disk.map((d) => ({ size: parseSize(d), blockSize: parseSize(opts.blockSize) }));
        const hypervisorConfig = opts.config ? await readFile(opts.config) : Buffer.alloc(0);
        const created = await client.createVm({ name, disks, hypervisorConfig });
        if (g.json) printJson(created);
        else printFields({ created: created.name, id: created.id, disks: created.disks.map((d) => formatBytes(d.size)).join(', ') });
      }),
    );
  vm.command('import <name> <images...>')
    .description('create a VM from raw images, one per vDisk')
    .option('--block-size <size>', 'block size, a power of two from 4K to 4M', '64K')
    .option('--config <file>', 'hypervisor config file kept with the VM')
    .action(
      withClient(async (client, g, name: string, images: string[], opts: { blockSize: string; config?: string }) => {
        const { importImages } = await import('./transfer.js');
        const { stat } = await import('node:fs/promises');
        const total = (await Promise.all(images.map((f) => stat(f)))).reduce((n, s) => n + s.size, 0);
        const progress = byteProgress('import', total, !g.json);
        const started = Date.now();
        const config = opts.config ? await readFile(opts.config) : Buffer.alloc(0);
        const created = await importImages(client, { name, blockSize: parseSize(opts.blockSize), config }, images, progress).finally(() => progress.stop());
        const secs = (Date.now() - started) / 1000;
        if (g.json) printJson({ ...created, importedBytes: total, seconds: secs });
        else
          printFields({
            imported: created.name,
            id: created.id,
            bytes: formatBytes(total),
            'grid offsets': created.disks.map((d) => d.gridOffset).join(', '),
            rate: `${formatBytes(Math.round(total / Math.max(secs, 0.001)))}/s`,
          });
      }),
    );
  vm.command('list')
    .description('list VMs')
    .action(
      withClient(async (client, g) => {
        const vms = await client.listVms();
        if (g.json) printJson(vms);
        else printTable(vms.map(vmRow));
      }),
    );
  vm.command('show <vm>')
    .description('show a VM')
    .action(
      withClient(async (client, g, name: string) => {
        const v = await client.getVm(name);
        if (g.json) {
          printJson(v);
          return;
        }
        printFields({
          name: v.name,
          id: v.id,
          'home site': v.homeSite,
          created: when(v.createdAtMs),
          snapshots: v.snapshotCount,
          'cloned from': v.clonedFrom ? `${v.clonedFrom.vmName}@${v.clonedFrom.snapshotId}` : '-',
          uuid: v.uuid,
          'hypervisor config': `${v.hypervisorConfig.length} bytes`,
        });
        printTable(
          v.disks.map((d) => ({
            disk: d.index,
            size: formatBytes(d.size),
            bytes: d.size,
            'block size': formatBytes(d.blockSize),
            'grid offset': d.gridOffset,
          })),
        );
      }),
    );
  registerHypervisorCommands(vm);
  vm.command('delete <vm>')
    .description('delete a VM and its snapshots (space is freed by gc)')
    .action(
      withClient(async (client, g, name: string) => {
        const v = await client.getVm(name);
        await client.deleteVm(name);
        if (g.json) printJson({ deleted: v.name, id: v.id });
        else printFields({ deleted: v.name, id: v.id });
      }),
    );

  const disk = program.command('disk').description('live vDisk I/O and export');
  disk
    .command('write <vm> <index> <file>')
    .description("write FILE's bytes into the live vDisk")
    .option('--offset <bytes>', 'byte offset in the vDisk (sizes like 1M accepted)', '0')
    .action(
      withClient(async (client, g, vmName: string, index: string, file: string, opts: { offset: string }) => {
        const { writeFile } = await import('./transfer.js');
        const { stat } = await import('node:fs/promises');
        const progress = byteProgress('write', (await stat(file)).size, !g.json);
        const r = await writeFile(client, { vm: vmName, diskIndex: parseIndex(index), offset: parseOffset(opts.offset) }, file, progress).finally(() =>
          progress.stop(),
        );
        if (g.json) printJson(r);
        else printFields({ written: formatBytes(r.bytesWritten), bytes: r.bytesWritten, 'grid offset': r.gridOffset });
      }),
    );
  disk
    .command('export <ref> <index> <file>')
    .description('write a vDisk (VM live state or VM@SNAPSHOT) to a raw image, holes kept sparse')
    .action(
      withClient(async (client, g, ref: string, index: string, file: string) => {
        const { exportDisk } = await import('./transfer.js');
        let progress = byteProgress('export', 1, false);
        const started = Date.now();
        const r = await exportDisk(client, { ref, diskIndex: parseIndex(index) }, file, (size) => (progress = byteProgress('export', size, !g.json)), {
          update: (n) => progress.update(n),
          stop: () => progress.stop(),
        }).finally(() => progress.stop());
        const secs = (Date.now() - started) / 1000;
        if (g.json) printJson({ ...r, file, seconds: secs });
        else printFields({ exported: file, size: formatBytes(r.size), 'data bytes': formatBytes(r.dataBytes), seconds: secs.toFixed(2) });
      }),
    );

  const snap = program.command('snapshot').description('create, list, show, label and delete snapshots');
  snap
    .command('create <vm>')
    .option('--label <label>', 'a label to refer to it by (VM@LABEL)')
    .action(
      withClient(async (client, g, vmName: string, opts: { label?: string }) => {
        const s = await client.createSnapshot({ vm: vmName, label: opts.label ?? '' });
        if (g.json) printJson(s);
        else printFields({ snapshot: `${s.vmName}@${s.label || s.id}`, id: s.id, 'dirty blocks': s.dirtyBlocks });
      }),
    );
  snap.command('list <vm>').action(
    withClient(async (client, g, vmName: string) => {
      const snapshots = await client.listSnapshots(vmName);
      if (g.json) printJson(snapshots);
      else printTable(snapshots.map(snapshotRow));
    }),
  );
  snap.command('show <ref>').action(
    withClient(async (client, g, ref: string) => {
      const s = await client.getSnapshot(ref);
      if (g.json) {
        printJson(s);
        return;
      }
      printFields({ vm: s.vmName, ...snapshotRow(s) });
      printTable(
        s.disks.map((d) => ({
          disk: d.index,
          size: formatBytes(d.size),
          'block size': formatBytes(d.blockSize),
          'grid offset': d.gridOffset,
          root: d.root.slice(0, 16),
        })),
      );
    }),
  );
  snap.command('label <ref> <label>').action(
    withClient(async (client, g, ref: string, label: string) => {
      const s = await client.labelSnapshot({ ref, label });
      if (g.json) printJson(s);
      else printFields({ labelled: `${s.vmName}@${s.label}`, id: s.id });
    }),
  );
  snap.command('delete <ref>').action(
    withClient(async (client, g, ref: string) => {
      const s = await client.getSnapshot(ref);
      await client.deleteSnapshot(ref);
      if (g.json) printJson({ deleted: ref, id: s.id });
      else printFields({ deleted: ref, id: s.id });
    }),
  );

  program
    .command('clone <ref> <name>')
    .description('new VMs from a snapshot (or from live state, snapshotting first); metadata only')
    .option('--count <n>', 'make N clones named NAME-001 … NAME-N', '1')
    .option('--libvirt', "define each clone in libvirt (virsh define of the source's domain XML template, filled in per clone)")
    .option('--libvirt-uri <uri>', 'libvirt connection URI for virsh -c (qemu:///system, …)')
    .option('--nbd <tcp|unix>', "with --libvirt: how the hypervisor reaches the node's NBD server")
    .action(
      withClient(async (client, g, ref: string, name: string, opts: { count: string; libvirt?: boolean; libvirtUri?: string; nbd?: string }) => {
        const count = parseCount(opts.count);
        // Checked before cloning, so a template or NBD problem makes no clones.
        const nbd = opts.libvirt ? nbdEndpoint(await client.getNodeInfo(), opts.nbd) : undefined;
        if (opts.libvirt) await checkLibvirtClone(await client.getVm(ref.split('@')[0] ?? ref), opts.libvirtUri);
        const started = Date.now();
        const r = await client.cloneVm({ ref, name, count });
        const seconds = (Date.now() - started) / 1000;
        const defined = nbd ? await defineVms(r.vms, nbd, opts.libvirtUri) : undefined;
        if (g.json) {
          printJson({ ...r, seconds, ...(defined ? { defined } : {}) });
          return;
        }
        printFields({ source: `${r.source?.vmName ?? ''}@${r.source?.id ?? ''}`, clones: r.vms.length, seconds: seconds.toFixed(2) });
        if (defined) printDefined(defined.slice(0, 20));
        else if (r.vms.length <= 20) printTable(r.vms.map(vmRow));
      }),
    );

  program
    .command('restore <ref>')
    .description('revert a VM (or one vDisk) to a snapshot; unsnapshotted writes are dropped')
    .option('--disk <index>', 'restore only this vDisk')
    .action(
      withClient(async (client, g, ref: string, opts: { disk?: string }) => {
        const v = await client.restore({ ref, ...(opts.disk === undefined ? {} : { diskIndex: parseIndex(opts.disk) }) });
        if (g.json) printJson(v);
        else printFields({ restored: v.name, from: ref, disks: opts.disk ?? 'all' });
      }),
    );

  program
    .command('stats [vm]')
    .description('space: logical vs stored bytes, dedup and compression, per VM unique vs shared')
    .action(
      withClient(async (client, g, vmName: string | undefined) => {
        const s = await client.getStats(vmName ?? '');
        if (g.json) {
          printJson(s);
          return;
        }
        printFields({
          'logical bytes': `${formatBytes(s.logicalBytes)} (${s.logicalBytes})`,
          'stored bytes': `${formatBytes(s.storedBytes)} (${s.storedBytes})`,
          'unique chunks': `${s.chunkCount} (${formatBytes(s.uncompressedBytes)} before compression)`,
          'dedup ratio': `${s.dedupRatio}x`,
          'compression ratio': `${s.compressionRatio}x`,
          'space saving': `${s.totalRatio}x`,
          vms: s.vmCount,
          snapshots: s.snapshotCount,
        });
        if (s.vms.length > 0 && s.vms.length <= 50) {
          printTable(
            s.vms.map((v) => ({
              vm: v.vmName,
              logical: formatBytes(v.logicalBytes),
              referenced: formatBytes(v.referencedStoredBytes),
              unique: formatBytes(v.uniqueStoredBytes),
              shared: formatBytes(v.sharedStoredBytes),
            })),
          );
        }
      }),
    );

  program
    .command('gc')
    .description('free chunks no snapshot or live state references')
    .action(
      withClient(async (client, g) => {
        const r = await client.runGc();
        if (g.json) printJson(r);
        else printFields({ marked: r.chunksMarked, swept: r.chunksSwept, freed: formatBytes(r.bytesFreed), 'duration ms': r.durationMs });
      }),
    );

  program
    .command('verify')
    .description('re-hash every stored chunk; report corrupt or missing chunks and who references them')
    .action(
      withClient(async (client, g) => {
        let report: VerifyReportView | undefined;
        for await (const ev of client.verify()) {
          if (ev.kind?.$case === 'progress' && !g.json && process.stderr.isTTY) process.stderr.write(`\rchecked ${ev.kind.value.chunksChecked} chunks`);
          if (ev.kind?.$case === 'report') report = ev.kind.value;
        }
        if (!report) throw new InternalError('the node ended verify without a report');
        if (g.json) printJson(report);
        else {
          if (process.stderr.isTTY) process.stderr.write('\n');
          printFields({ 'chunks checked': report.chunksChecked, corrupt: report.corrupt.length, missing: report.missing.length });
          if (report.corrupt.length > 0)
            printTable(report.corrupt.map((c) => ({ chunk: c.chunkId.slice(0, 16), reason: c.reason, 'referenced by': c.referencedBy.join(', ') })));
          // A node older than missing_chunks sends only the ids.
          const refs = new Map(report.missingChunks.map((m) => [m.chunkId, m.referencedBy]));
          for (const m of report.missing) process.stdout.write(`missing chunk ${m.slice(0, 16)}${refsNote(refs.get(m))}\n`);
        }
        if (report.corrupt.length > 0 || report.missing.length > 0) process.exitCode = 2;
      }),
    );
}
