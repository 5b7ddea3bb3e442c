/** Real damage to a stopped node's files, for the fault tests (not a test file itself). */
import { openSync, closeSync, readSync, writeSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Inverts `count` bytes of `file` at `offset` in place (a real bit-rot stand-in). */
export function flipBytes(file: string, offset: number, count: number): void {
  const fd = openSync(file, 'r+');
  try {
    const b = Buffer.alloc(count);
    const n = readSync(fd, b, 0, count, offset);
    for (let i = 0; i < n; i++) b[i] = (b[i] as number) ^ 0xff;
    writeSync(fd, b, 0, n, offset);
  } finally {
    closeSync(fd);
  }
}

/** Files of `dataDir` whose names match `pattern`, largest first, with their sizes. */
export function filesOf(dataDir: string, pattern: RegExp): { path: string; size: number }[] {
  return readdirSync(dataDir)
    .filter((n) => pattern.test(n))
    .map((n) => ({ path: join(dataDir, n), size: statSync(join(dataDir, n)).size }))
    .sort((a, b) => b.size - a.size);
}

/** The node's current write-ahead log: the highest-numbered `*.log` file. */
export function currentWal(dataDir: string): { path: string; size: number } {
  const wal = filesOf(dataDir, /^\d+\.log$/).sort((a, b) => (a.path < b.path ? 1 : -1))[0];
  if (!wal) throw new Error(`no WAL file in ${dataDir}`);
  return wal;
}
