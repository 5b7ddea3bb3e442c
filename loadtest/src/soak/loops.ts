/**
 * The background loops of a soak: GC, verify and the killer. Each runs until `stopped()`.
 */
import type { NodeControl } from './node-control.js';
import type { Rng } from '@vmferry/testkit';
import type { Tally } from './report.js';

/** Sleeps `ms`, waking early when `stopped()`. */
export async function pause(ms: number, stopped: () => boolean): Promise<void> {
  const until = performance.now() + ms;
  while (!stopped() && performance.now() < until) await new Promise((r) => setTimeout(r, Math.min(100, until - performance.now())));
}

interface VerifyJson {
  readonly chunksChecked: number;
  readonly corrupt: readonly { chunkId: string; reason: string; referencedBy: string[] }[];
  /** Chunk ids (hex) referenced by a root but absent from the store. */
  readonly missing: readonly string[];
}

/** GC back to back (0–50 ms apart), while the clients work: the wider GC's share of time, the likelier it races a snapshot. */
export async function gcLoop(ctl: NodeControl, tally: Tally, rng: Rng, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    const refusedBefore = tally.gc.refused;
    const r = await ctl.gc();
    if ('report' in r) {
      tally.gc.runs++;
      tally.gc.chunksSwept += r.report.chunksSwept;
      tally.gc.bytesFreed += r.report.bytesFreed;
    } else if (r.code === 'data-loss') {
      // The node will not collect while a referenced chunk is missing: GC is stopped from then
      // on. A loss (once per message; the loop keeps asking every 50 ms).
      tally.gc.refused++;
      tally.lossOnce('gc failed with DATA_LOSS', 'a GC run', r.error);
    } else if (!r.interrupted) tally.error('gc', r.error);
    // After a refusal, ask once a second (a damaged store stays damaged).
    await pause(tally.gc.refused > refusedBefore ? 1000 : rng.int(0, 50), stopped);
  }
}

/** Runs `vmferry verify` once; returns its report, or why there is none. */
async function verify(ctl: NodeControl, tally: Tally, when: string): Promise<VerifyJson | 'interrupted' | 'failed'> {
  const r = await ctl.cli(['verify']);
  if (r.code === 0 || r.code === 2) {
    tally.verifyRuns++;
    tally.check(`verify (${when})`);
    return JSON.parse(r.stdout) as VerifyJson;
  }
  if (r.interrupted) return 'interrupted';
  tally.error('verify', r.stderr);
  return 'failed';
}

const damaged = (v: VerifyJson): string[] => [...v.missing, ...v.corrupt.map((c) => c.chunkId)];

/**
 * Runs `vmferry verify`; damage (exit 2) is a loss. During load, verify indexes the store
 * before it walks the roots, so a chunk written in between can be reported missing though
 * it is not: damage found under load is a loss only if a second verify still finds the same
 * chunk damaged; otherwise it is counted as a transient alarm (and printed).
 */
export async function verifyOnce(ctl: NodeControl, tally: Tally, when: 'during load' | 'final'): Promise<'clean' | 'damage' | 'interrupted' | 'failed'> {
  const first = await verify(ctl, tally, when);
  if (typeof first === 'string') return first;
  let bad = damaged(first);
  if (bad.length === 0) return 'clean';
  if (when === 'during load') {
    const again = await verify(ctl, tally, 'recheck');
    if (typeof again === 'string') return again;
    const still = new Set(damaged(again));
    const gone = bad.filter((id) => !still.has(id));
    if (gone.length > 0)
      tally.transient(
        `verify (during load) reported ${gone.length} chunk(s) damaged that the next verify found whole or unreferenced: ${gone.map((id) => id.slice(0, 16)).join(', ')}`,
      );
    bad = bad.filter((id) => still.has(id));
    if (bad.length === 0) return 'clean';
  }
  const refs = [...new Set(first.corrupt.flatMap((c) => c.referencedBy))];
  tally.loss(
    `verify (${when}) found damage`,
    'no missing or corrupt chunk',
    `${first.missing.length} missing, ${first.corrupt.length} corrupt of ${first.chunksChecked} checked (${bad.map((id) => id.slice(0, 16)).join(', ')})${refs.length > 0 ? `; corrupt ones referenced by ${refs.slice(0, 12).join(', ')}` : ''}`,
  );
  return 'damage';
}

/** `vmferry verify` in a loop, while the clients work. */
export async function verifyLoop(ctl: NodeControl, tally: Tally, rng: Rng, stopped: () => boolean): Promise<void> {
  while (!stopped()) {
    await verifyOnce(ctl, tally, 'during load');
    // verify re-hashes every chunk: CPU the clients need too, so not back to back.
    await pause(rng.int(3000, 6000), stopped);
  }
}

/**
 * SIGKILLs the node `everyMs` (± 45 %, at random) after each restart, and restarts it on the
 * same data. It also waits until `minOps` operations were reported done since the restart:
 * on a loaded machine a CLI call takes seconds, and a client's look after a cut-off call
 * plus its next call can outlast the gap, so without this floor nothing would complete.
 */
export async function killLoop(ctl: NodeControl, tally: Tally, rng: Rng, everyMs: number, minOps: number, stopped: () => boolean): Promise<void> {
  const done = (): number => Object.values(tally.operations).reduce((a, b) => a + b, 0);
  for (;;) {
    const before = done();
    await pause(rng.int(Math.round(everyMs * 0.55), Math.round(everyMs * 1.45)), stopped);
    while (!stopped() && done() - before < minOps) await pause(100, stopped);
    if (stopped()) return;
    await ctl.killAndRestart();
  }
}
