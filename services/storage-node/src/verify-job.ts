/*
 * Scheduled verify (the policy's `verify` schedule, like a PBS verify job): the scheduler
 * publishes one job per site and slot; this site's node re-hashes its whole store and reports
 * the outcome as an event — `verify.done` when clean, `verify.damaged` naming the bad and
 * missing chunks and the VMs and snapshots that reference them — and in the verify metrics
 * (vmferry_verify_runs_total{trigger="scheduled"}, the last-run gauges).
 *
 * Damage found is a result, not a failure: the job is acknowledged (re-running it would find
 * the same). A slot already verified by this process (a redelivery) is not verified again.
 */
import { InvalidArgumentError, type VerifyReport } from '@vmferry/core';
import { publishEvent, runWorker, verifyJobSubject, type Coordination, type VerifyJob, type WorkerHandle } from '@vmferry/nats';
import type { StorageEngine } from './engine.js';

/** Chunks listed in a verify.damaged event at most (the full list: `vmferry verify`). */
export const DAMAGE_LIST_LIMIT = 50;

/** Consumes this site's verify jobs, one at a time. */
export async function startVerifyWorker(
  c: Coordination,
  engine: StorageEngine,
  site: string,
  log: (line: string) => void = () => undefined,
): Promise<WorkerHandle> {
  let lastSlot = -Infinity;
  return runWorker<VerifyJob>(
    c,
    `verify-${site}`,
    verifyJobSubject(site),
    async (job) => {
      if (job.site !== site || !Number.isSafeInteger(job.slot))
        throw new InvalidArgumentError(`verify job for site ${JSON.stringify(job.site)} slot ${String(job.slot)} is not this site's (${site})`);
      if (job.slot <= lastSlot) return;
      const started = performance.now();
      const report = await engine.verify(undefined, 'scheduled');
      lastSlot = job.slot;
      const seconds = (performance.now() - started) / 1000;
      await publishEvent(
        c,
        outcomeOf(report) === 'clean' ? 'verify.done' : 'verify.damaged',
        eventFields(report, site, job.slot, seconds),
        `verify.${site}.${job.slot}`,
      );
      log(
        `scheduled verify of slot ${new Date(job.slot).toISOString()}: ${report.chunksChecked} chunks checked, ${damagedCount(report)} damaged (${seconds.toFixed(1)} s)`,
      );
    },
    (e) => log(`scheduled verify failed: ${(e as Error).message}`),
    1,
  );
}

const damagedCount = (r: VerifyReport): number => r.corrupt.length + r.missing.length;
const outcomeOf = (r: VerifyReport): 'clean' | 'damaged' => (damagedCount(r) > 0 ? 'damaged' : 'clean');

function eventFields(r: VerifyReport, site: string, slot: number, seconds: number): Record<string, unknown> {
  const base = { site, slot, chunksChecked: r.chunksChecked, damagedChunks: damagedCount(r), seconds };
  if (outcomeOf(r) === 'clean') return base;
  const affected = [...new Set([...r.corrupt, ...r.missing].flatMap((x) => x.referencedBy))].sort();
  return {
    ...base,
    corrupt: r.corrupt.slice(0, DAMAGE_LIST_LIMIT).map((x) => ({ chunkId: x.chunkId, reason: x.reason })),
    missing: r.missing.slice(0, DAMAGE_LIST_LIMIT).map((x) => x.chunkId),
    affected: affected.slice(0, DAMAGE_LIST_LIMIT),
    truncated: r.corrupt.length > DAMAGE_LIST_LIMIT || r.missing.length > DAMAGE_LIST_LIMIT || affected.length > DAMAGE_LIST_LIMIT,
  };
}
