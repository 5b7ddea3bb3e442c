/*
 * Pre-flight plan: exactly which bytes a replication would move, and how long under the
 * link's throttle calendar. It walks the tree like a session (fetching only the tree nodes
 * the target lacks, which it must read to walk) and asks the source for the stored sizes of
 * the missing data chunks, without moving them.
 */
import { InvalidArgumentError, parseCalendar, transferSeconds, UNLIMITED } from '@vmferry/core';
import type { SourcePort, TargetPort } from './ports.js';
import { DEFAULT_STREAMS, missingIn, walkMissing } from './session.js';
import { checkSourceMetadata } from './source-checks.js';

export interface Plan {
  readonly vmName: string;
  readonly snapshotId: string;
  readonly missingChunks: number;
  readonly missingBytes: number;
  readonly presentChunks: number;
  readonly treeNodes: number;
  readonly treeNodeBytes: number;
  readonly totalBytes: number;
  /** Seconds under the calendar from now; null when the link is unlimited (no estimate). */
  readonly etaSeconds: number | null;
  readonly rateCalendar: string;
}

export async function planReplication(o: {
  source: SourcePort;
  target: TargetPort;
  ref: string;
  calendar?: string;
  timeZone?: string;
  now?: Date;
}): Promise<Plan> {
  const info = await o.source.getSnapshot(o.ref);
  if (!info.vm || !info.snapshot) throw new InvalidArgumentError(`source answered without the snapshot for ${o.ref}`);
  checkSourceMetadata(info.site, info);
  let nodeBytes = 0;
  let nodeCount = 0;
  const { dataIds } = await walkMissing(o, info.snapshot, DEFAULT_STREAMS, (records) => {
    nodeCount += records.length;
    nodeBytes += records.reduce((n, r) => n + r.record.length, 0);
    return Promise.resolve();
  });
  const missing = await missingIn(o.target, [...dataIds.values()]);
  let missingBytes = 0;
  for (let i = 0; i < missing.length; i += 8192) missingBytes += (await o.source.sizes(missing.slice(i, i + 8192))).reduce((a, b) => a + b, 0);
  const calendar = parseCalendar(o.calendar ?? '');
  const total = missingBytes + nodeBytes;
  const unlimited = calendar.entries.length === 0 && calendar.otherwise === UNLIMITED;
  return {
    vmName: info.vm.name,
    snapshotId: info.snapshot.id,
    missingChunks: missing.length,
    missingBytes,
    presentChunks: dataIds.size - missing.length,
    treeNodes: nodeCount,
    treeNodeBytes: nodeBytes,
    totalBytes: total,
    etaSeconds: unlimited ? null : transferSeconds(calendar, total, o.now ?? new Date(), o.timeZone),
    rateCalendar: calendar.text || 'unlimited',
  };
}
