/**
 * The background loops of a soak: GC, verify and the killer. Each runs until `stopped()`.
 */
import type { NodeControl } from './node-control.js';
import type { Rng } from './random.js';
import type { Tally } from './report.js';

/** Sleeps `ms`, waking early when `stopped()`. */
export async function pause(ms: number, stopped: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!stopped() && performance.now() < until) await new Promise((r) => setTimeout(r, Math.min(100, until - performance.now())));
}

interface GcJson {
  readonly chunksSwept: number;
  readonly bytesFreed: number;
}

interface VerifyJson {
  readonly chunksChecked: number;
  readonly corrupt: readonly { chunkId: string; reason: string; referencedBy: string[] }[];
  readonly missing: readonly { chunkId: string; referencedBy: string[] }[];
}

/** `vmferry gc` back to back (a short pause between runs), while the clients work. */
export async function gcLoop(ctl: NodeControl, tally: Tally, rng: Rng, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const r = await ctl.cli(['gc']);
    if (r.code === 0) {
      const gc = JSON.parse(r.stdout) as GcJson;
      tally.gc.runs++;
      tally.gc.chunksSwept += gc.chunksSwept;
      tally.gc.bytesFreed += gc.bytesFreed;
    } else if (!r.interrupted) tally.error('gc', r.stderr);
    await pause(rng.int(50, 400), stopped);
  }
}

/** Runs `vmferry verify` once; exit 2 (damage found) is a loss. */
export async function verifyOnce(ctl: NodeControl, tally: Tally, when: string): Promise<'clean' | 'damage' | 'interrupted' | 'failed'> {
  const r = await ctl.cli(['verify']);
  if (r.code === 2) {
    const v = JSON.parse(r.stdout) as VerifyJson;
    tally.verifyRuns++;
    tally.check(`verify (${when})`);
    const refs = [...new Set([...v.missing, ...v.corrupt].flatMap((m) => m.referencedBy))];
    tally.loss(
      `verify (${when}) found damage`,
      'no missing or corrupt chunk',
      `${v.missing.length} missing, ${v.corrupt.length} corrupt of ${v.chunksChecked} checked; referenced by ${refs.slice(0, 12).join(', ')}${refs.length > 12 ? ` and ${refs.length - 12} more` : ''}`,
    );
    return 'damage';
  }
  if (r.code === 0) {
    tally.verifyRuns++;
    tally.check(`verify (${when})`);
    return 'clean';
  }
  if (r.interrupted) return 'interrupted';
  tally.error('verify', r.stderr);
  return 'failed';
}

/** `vmferry verify` in a loop, while the clients work. */
export async function verifyLoop(ctl: NodeControl, tally: Tally, rng: Rng, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    await verifyOnce(ctl, tally, 'during load');
    await pause(rng.int(500, 2500), stopped);
  }
}

/** SIGKILLs the node every `everyMs` (± 45 %, at random) and restarts it on the same data. */
export async function killLoop(ctl: NodeControl, rng: Rng, everyMs: number, stopped: () => boolean): Promise<void> {
  for (;;) {
    await pause(rng.int(Math.round(everyMs * 0.55), Math.round(everyMs * 1.45)), stopped);
    if (stopped()) return;
    await ctl.killAndRestart();
  }
}
