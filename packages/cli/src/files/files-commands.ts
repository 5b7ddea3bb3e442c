/**
 * `vmferry files ls | get | find | partitions`: browse and pull files out of a snapshot, the
 * live state (a read-only view), a clone or a replica, reading only the blocks the guest
 * filesystem needs through the node's ReadDisk calls (never exporting the disk).
 */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import { formatBytes, InvalidArgumentError } from '@vmferry/core';
import type { StorageNodeClient } from '@vmferry/grpc-edge';
import { printFields, printJson, printTable } from '../output.js';
import { withClient } from '../with-client.js';
import { wholeNumberFlag } from '../flags.js';
import { guestPath, type FileEntry } from './file-tree.js';
import { describePartitions, openTree, readLayout, type OpenedTree } from './open-tree.js';
import type { DiskReadStats } from './node-disk.js';

interface TreeOpts {
  partition?: string;
}

const partitionFlag = (o: TreeOpts): number | undefined => (o.partition === undefined ? undefined : wholeNumberFlag('--partition', o.partition, 0, 1024));

async function withTree<T>(client: StorageNodeClient, ref: string, o: TreeOpts, fn: (t: OpenedTree) => Promise<T>): Promise<T> {
  const opened = await openTree(client, ref, partitionFlag(o));
  try {
    return await fn(opened);
  } finally {
    await opened.tree.close();
  }
}

const PERM = ['r', 'w', 'x', 'r', 'w', 'x', 'r', 'w', 'x'];
/** `drwxr-xr-x`, as ls -l prints it (setuid/setgid/sticky shown as s/S, t/T). */
export function modeString(e: FileEntry): string {
  const t = { file: '-', dir: 'd', symlink: 'l', other: '?' }[e.type];
  const bits = PERM.map((c, i) => ((e.mode >> (8 - i)) & 1 ? c : '-'));
  const special = (i: number, flag: number, on: string): void => {
    if (e.mode & flag) bits[i] = bits[i] === '-' ? on.toUpperCase() : on;
  };
  special(2, 0o4000, 's');
  special(5, 0o2000, 's');
  special(8, 0o1000, 't');
  return t + bits.join('');
}

const when = (ms: number): string => new Date(ms).toISOString().replace('T', ' ').slice(0, 19);

function statsFields(s: DiskReadStats, ms: number): Record<string, string | number> {
  return {
    'read from node': `${formatBytes(s.bytesFetched)} (${s.bytesFetched} bytes)`,
    'read calls': s.calls,
    'filesystem reads': s.reads,
    milliseconds: Math.round(ms),
  };
}

function partitionJson(t: OpenedTree): Record<string, string | number> {
  const p = t.partition;
  return { number: p.number, kind: p.kind, type: p.type, filesystem: p.filesystem, startBytes: p.startBytes, sizeBytes: p.sizeBytes };
}

/** Tells the node's reads on stderr every half second on a terminal (not with --json). */
function ticker(enabled: boolean, line: () => string): { stop(): void } {
  if (!enabled || !process.stderr.isTTY) return { stop: () => undefined };
  const t = setInterval(() => process.stderr.write(`\r${line()}`), 500);
  return {
    stop: () => {
      clearInterval(t);
      process.stderr.write('\r\x1b[K');
    },
  };
}

export function registerFilesCommands(program: Command): void {
  const files = program
    .command('files')
    .description('browse and copy files out of a snapshot, live state, clone or replica (ext2/3/4, FAT), without exporting the disk');

  files
    .command('partitions <ref>')
    .description('list the partitions of REF[:DISK] (MBR or GPT) and the filesystem found in each')
    .action(
      withClient(async (client, g, ref: string) => {
        const layout = await readLayout(client, ref);
        if (g.json) {
          printJson({ ref, scheme: layout.scheme, partitions: layout.partitions, stats: layout.disk.stats });
          return;
        }
        printFields({
          disk: `${layout.disk.target.ref} vDisk ${layout.disk.target.diskIndex}`,
          table: layout.scheme,
          size: formatBytes(layout.disk.target.size),
        });
        printTable(
          layout.partitions.map((p) => ({
            number: p.number,
            kind: p.kind,
            type: p.type,
            start: p.startBytes,
            size: formatBytes(p.sizeBytes),
            filesystem: p.filesystem,
            name: p.name,
          })),
        );
      }),
    );

  files
    .command('ls <ref> [path]')
    .description('list a directory (or show one entry) of REF[:DISK]: VM, VM@SNAPSHOT, VM:1 …; PATH defaults to /')
    .option('--partition <n>', 'partition number as in sfdisk/sgdisk (0: the whole vDisk); default: the largest Linux or Windows data partition')
    .option('-l, --long', 'mode, owner, size and modification time')
    .option('--stats', 'print the bytes read from the node and the time taken')
    .action(
      withClient(async (client, g, ref: string, path: string | undefined, o: TreeOpts & { long?: boolean; stats?: boolean }) => {
        const started = performance.now();
        const p = guestPath(path ?? '/');
        await withTree(client, ref, o, async (t) => {
          const self = await t.tree.stat(p);
          const entries = self.type === 'dir' ? await t.tree.list(p) : [self];
          const targets = new Map<string, string>();
          for (const e of entries) if (e.type === 'symlink' && (o.long || g.json)) targets.set(e.path, await t.tree.readlink(e.path));
          const ms = performance.now() - started;
          if (g.json) {
            printJson({
              ref,
              partition: partitionJson(t),
              path: p,
              entries: entries.map((e) => ({ ...e, ...(targets.has(e.path) ? { target: targets.get(e.path) } : {}) })),
              stats: { ...t.disk.stats, milliseconds: Math.round(ms) },
            });
            return;
          }
          const name = (e: FileEntry): string => (e.type === 'dir' ? `${e.name}/` : targets.has(e.path) ? `${e.name} -> ${targets.get(e.path) ?? ''}` : e.name);
          if (o.long) printTable(entries.map((e) => ({ mode: modeString(e), uid: e.uid, gid: e.gid, size: e.size, modified: when(e.mtimeMs), name: name(e) })));
          else for (const e of entries) process.stdout.write(`${name(e)}\n`);
          if (o.stats) printFields(statsFields(t.disk.stats, ms));
        });
      }),
    );

  files
    .command('get <ref> <path> <dest>')
    .description(
      'copy a file, symlink or directory (recursively) out of REF[:DISK], keeping modes, times and symlinks; DEST must not exist (an existing folder receives PATH by its name)',
    )
    .option('--partition <n>', 'partition number (0: the whole vDisk); default: the largest Linux or Windows data partition')
    .option('--stats', 'print the bytes read from the node beside the bytes restored')
    .action(
      withClient(async (client, g, ref: string, path: string, dest: string, o: TreeOpts & { stats?: boolean }) => {
        const started = performance.now();
        const p = guestPath(path);
        const { copyOut } = await import('./copy-out.js');
        const into = await stat(dest).then(
          (s) => s.isDirectory(),
          () => false,
        );
        const target = into ? join(dest, p === '/' ? 'root' : basename(p)) : dest;
        await withTree(client, ref, o, async (t) => {
          const entry = await t.tree.stat(p);
          let copied = { files: 0, bytes: 0 };
          const tick = ticker(
            !g.json,
            () => `copied ${copied.files} files, ${formatBytes(copied.bytes)}; read ${formatBytes(t.disk.stats.bytesFetched)} from the node`,
          );
          const report = await copyOut(t.tree, entry, target, (r) => (copied = r)).finally(() => tick.stop());
          const ms = performance.now() - started;
          if (g.json) {
            printJson({ ref, partition: partitionJson(t), path: p, dest: target, ...report, stats: { ...t.disk.stats, milliseconds: Math.round(ms) } });
            return;
          }
          printFields({
            restored: `${p} -> ${target}`,
            files: report.files,
            directories: report.dirs,
            symlinks: report.symlinks,
            bytes: `${formatBytes(report.bytes)} (${report.bytes})`,
          });
          for (const s of report.skipped) process.stderr.write(`skipped ${s.path}: ${s.reason}\n`);
          if (o.stats) printFields(statsFields(t.disk.stats, ms));
        });
      }),
    );

  files
    .command('find <ref> <pattern>')
    .description("find entries of REF[:DISK] whose name matches a glob ('*.conf'; with a '/', the whole path: '/etc/**/*.list')")
    .option('--partition <n>', 'partition number (0: the whole vDisk); default: the largest Linux or Windows data partition')
    .option('--under <path>', 'search only below this directory', '/')
    .option('--type <f|d|l>', 'only files, directories or symlinks')
    .option('--limit <n>', 'stop after this many matches', '10000')
    .action(
      withClient(async (client, g, ref: string, pattern: string, o: TreeOpts & { under: string; type?: string; limit: string }) => {
        const { findEntries } = await import('./find.js');
        const started = performance.now();
        const limit = wholeNumberFlag('--limit', o.limit, 1, 10_000_000);
        const type = o.type === undefined ? undefined : ({ f: 'file', d: 'dir', l: 'symlink' } as const)[o.type];
        if (o.type !== undefined && type === undefined) throw new InvalidArgumentError(`--type must be f, d or l, not '${o.type}'`);
        await withTree(client, ref, o, async (t) => {
          let scanned = 0;
          const tick = ticker(!g.json, () => `searched ${scanned} directories`);
          const found = await findEntries(t.tree, guestPath(o.under), pattern, { limit, ...(type ? { type } : {}), onDirectory: () => scanned++ }).finally(() =>
            tick.stop(),
          );
          const ms = performance.now() - started;
          if (g.json)
            printJson({
              ref,
              partition: partitionJson(t),
              pattern,
              matches: found.matches,
              truncated: found.truncated,
              stats: { ...t.disk.stats, milliseconds: Math.round(ms) },
            });
          else {
            for (const e of found.matches) process.stdout.write(`${e.path}${e.type === 'dir' ? '/' : ''}\n`);
            if (found.truncated) process.stderr.write(`stopped after ${limit} matches (--limit)\n`);
          }
        });
      }),
    );
}

export { describePartitions };
