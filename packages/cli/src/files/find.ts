/** `files find`: a breadth-first walk of a guest filesystem, matching names (or paths) against a glob. */
import picomatch from 'picomatch';
import type { EntryType, FileEntry, FileTree } from './file-tree.js';

export interface FindOptions {
  readonly limit: number;
  readonly type?: EntryType;
  readonly onDirectory?: () => void;
}

/** Entries under `start` matching `pattern`, in breadth-first order; symlinks are not followed. */
export async function findEntries(tree: FileTree, start: string, pattern: string, o: FindOptions): Promise<{ matches: FileEntry[]; truncated: boolean }> {
  const byPath = pattern.includes('/');
  const isMatch = picomatch(pattern, { dot: true });
  const matches: FileEntry[] = [];
  const queue = [start];
  for (let dir = queue.shift(); dir !== undefined; dir = queue.shift()) {
    o.onDirectory?.();
    for (const e of await tree.list(dir)) {
      if (e.type === 'dir') queue.push(e.path);
      if (o.type !== undefined && e.type !== o.type) continue;
      if (!isMatch(byPath ? e.path : e.name)) continue;
      matches.push(e);
      if (matches.length >= o.limit) return { matches, truncated: true };
    }
  }
  return { matches, truncated: false };
}
