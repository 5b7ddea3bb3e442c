/*
 * Why RocksDB refused to open a data directory, in words an operator can act on. RocksDB's
 * own error says only "checksum mismatch"; the file and the byte count it could not replay
 * are in the LOG it wrote during that open attempt, so we read them from there.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreDamagedError, VmferryError } from '@vmferry/core';

/** One WAL file RocksDB could not replay in full. */
export interface WalDamage {
  readonly file: string;
  readonly droppedBytes: number;
  readonly reason: string;
}

const DROPPING = /\] (\S+\.log): dropping (\d+) bytes; (.*)$/;

/** The WAL damage RocksDB logged during its latest open attempt of `dir`, per file (empty when none). */
export async function walDamageFromLog(dir: string): Promise<WalDamage[]> {
  const log = await readFile(join(dir, 'LOG'), 'utf8').catch(() => '');
  // RocksDB logs one line per skipped stretch; one entry per file: its first reason, total bytes.
  const byFile = new Map<string, WalDamage>();
  for (const line of log.split('\n')) {
    const m = DROPPING.exec(line);
    if (!m) continue;
    const file = m[1] as string;
    const seen = byFile.get(file);
    byFile.set(file, { file, droppedBytes: (seen?.droppedBytes ?? 0) + Number(m[2]), reason: seen?.reason ?? (m[3] as string) });
  }
  return [...byFile.values()];
}

/** The command that discards damaged WAL records and lists what they held. */
export const recoverWalCommand = (dir: string): string => `vmferry node --data ${dir} --recover-wal`;

/**
 * Turns RocksDB's open failure into a coded error naming the damaged file and what to do.
 * Anything that is not damage (a lock held by another node, permissions) passes through.
 */
export async function explainOpenFailure(dir: string, e: unknown): Promise<unknown> {
  if (e instanceof VmferryError || !(e instanceof Error)) return e;
  const wal = await walDamageFromLog(dir);
  if (wal.length > 0) {
    const where = wal.map((w) => `${w.file} (${w.reason}; ${w.droppedBytes} bytes unreadable)`).join(', ');
    return new StoreDamagedError(
      `data directory ${dir}: the write-ahead log is damaged: ${where}. The node refuses to open rather than silently ` +
        `drop commits it reported as durable. Run '${recoverWalCommand(dir)}' to discard the damaged records and everything ` +
        `logged after them (it lists the VMs and snapshots lost), or restore the directory from a backup or a replica`,
      { cause: e },
    );
  }
  if (/corrupt|checksum|mismatch|MANIFEST|CURRENT|no such file|missing/i.test(e.message)) {
    return new StoreDamagedError(
      `data directory ${dir} cannot be opened, its database files are damaged: ${e.message}. ` +
        `Restore the directory from a backup or re-replicate its VMs from another site`,
      { cause: e },
    );
  }
  return e;
}
