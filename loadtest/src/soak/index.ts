/**
 * The soak: clients write, snapshot, clone, restore, delete and import their VMs through the
 * CLI while GC and verify run in loops and the node is SIGKILLed at random moments; then
 * everything the CLI reported as done is checked. See loadtest/README.md.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { finalCheck } from './checker.js';
import { ClientIo } from './client-io.js';
import { SoakClient } from './client.js';
import { gcLoop, killLoop, verifyLoop } from './loops.js';
import { sharedLibrary } from './model.js';
import { NodeControl } from './node-control.js';
import { Rng } from '@vmferry/testkit';
import { Tally, type SoakReport } from './report.js';

export { formatReport, type Loss, type SoakReport } from './report.js';

/** Soak parameters. */
export interface SoakOptions {
  /** Seconds of load before the final check. */
  readonly seconds: number;
  readonly clients: number;
  /** Mean time between kills (each gap is uniform in ± 45 % of it); default 5,500 ms (3–8 s), counted from each restart. A kill also waits until `clients` operations were reported done since the last one, so a slow machine still makes progress. */
  readonly killEveryMs?: number;
  readonly seed: number;
  /** Where the node keeps its data (and the clients their files); default a temporary folder, removed after. */
  readonly dataDir?: string;
  /** Operations reported done between two kills, at least (default: `clients`). */
  readonly minOpsPerKill?: number;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

/** Runs a soak and returns its report; `report.losses` must be empty. */
export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const work = options.dataDir ?? mkdtempSync(join(tmpdir(), 'vmferry-soak-'));
  mkdirSync(work, { recursive: true });
  const log = options.log ?? (() => undefined);
  const tally = new Tally();
  const ctl = new NodeControl(join(work, 'node'));
  const rng = new Rng(options.seed);
  const library = sharedLibrary(options.seed);
  await ctl.start();
  let stop = false;
  const stopped = (): boolean => stop;
  const clients = Array.from({ length: options.clients }, (_, i) => {
    const io = new ClientIo(ctl, tally, join(work, `client-${i}.bin`));
    return { io, client: new SoakClient(io, new Rng(options.seed + 7919 * (i + 1)), `c${i}`, library) };
  });
  const started = performance.now();
  const progress = setInterval(
    () =>
      log(
        `  ${tally.elapsed()} s: ${Object.values(tally.operations).reduce((a, b) => a + b, 0)} ops, ${ctl.kills} kills, ${tally.gc.runs} gc, ${tally.losses.length} losses`,
      ),
    10_000,
  );
  try {
    const killer = killLoop(ctl, tally, new Rng(rng.int(0, 2 ** 31)), options.killEveryMs ?? 5500, options.minOpsPerKill ?? options.clients, stopped);
    const loops = Promise.all([
      gcLoop(ctl, tally, new Rng(rng.int(0, 2 ** 31)), stopped),
      verifyLoop(ctl, tally, new Rng(rng.int(0, 2 ** 31)), stopped),
      ...clients.map(({ client }) => client.run(stopped)),
    ]);
    // If a restart fails, the loops fail too (no node); the killer's error is the one thrown.
    loops.catch(() => undefined);
    const timer = new Promise<void>((r) => setTimeout(r, options.seconds * 1000));
    // A failed restart ends the soak early (and fails it): nothing else can run.
    await Promise.race([timer, killer]);
    stop = true;
    await killer;
    await loops;
    const seconds = (performance.now() - started) / 1000;
    clearInterval(progress);
    log(`  load done after ${seconds.toFixed(1)} s; a last SIGKILL, restart and the final check`);
    const checkStarted = performance.now();
    await ctl.killAndRestart();
    await finalCheck(new ClientIo(ctl, tally, join(work, 'checker.bin')), clients);
    return {
      seed: options.seed,
      clients: options.clients,
      seconds,
      operations: tally.operations,
      unknownOutcomes: tally.unknownOutcomes,
      kills: ctl.kills,
      restarts: ctl.restarts,
      gc: tally.gc,
      verifyRuns: tally.verifyRuns,
      checks: tally.checks,
      losses: tally.losses,
      errors: { count: tally.errorCount, samples: tally.errorSamples() },
      transientAlarms: tally.transientAlarms,
      downSeconds: ctl.downMs / 1000,
      finalCheckSeconds: (performance.now() - checkStarted) / 1000,
    };
  } finally {
    clearInterval(progress);
    stop = true;
    await ctl.stop().catch(() => undefined);
    if (!options.dataDir) rmSync(work, { recursive: true, force: true });
  }
}
