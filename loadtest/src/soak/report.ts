/** What the soak counts while it runs, and the report it returns. */

/** Something the CLI reported as done that did not hold. */
export interface Loss {
  readonly what: string;
  readonly expected: string;
  readonly got: string;
  /** Seconds since the soak started. */
  readonly atSeconds: number;
}

/** The soak's result. */
export interface SoakReport {
  readonly seed: number;
  readonly clients: number;
  readonly seconds: number;
  /** Operations the CLI reported as done, per kind. */
  readonly operations: Record<string, number>;
  /** Operations cut off by a kill (outcome unknown, resolved afterwards), per kind. */
  readonly unknownOutcomes: Record<string, number>;
  readonly kills: number;
  readonly restarts: number;
  /** GC runs done, and refused by the node (DATA_LOSS: it will not collect a damaged store). */
  readonly gc: { readonly runs: number; readonly refused: number; readonly chunksSwept: number; readonly bytesFreed: number };
  readonly verifyRuns: number;
  /** Checks made (an export hash-compared, a listing compared, a verify), per kind. */
  readonly checks: Record<string, number>;
  readonly losses: readonly Loss[];
  /** CLI failures not caused by a kill and not a loss (count, first few messages). */
  readonly errors: { readonly count: number; readonly samples: readonly string[] };
  /** Damage a verify under load reported that the next verify did not find (not losses). */
  readonly transientAlarms: readonly string[];
  /** Seconds the node was down (killed, restarting). */
  readonly downSeconds: number;
  readonly finalCheckSeconds: number;
}

const MAX_SAMPLES = 20;

/** Counters shared by the clients, loops and checker of one soak. */
export class Tally {
  readonly operations: Record<string, number> = {};
  readonly unknownOutcomes: Record<string, number> = {};
  readonly checks: Record<string, number> = {};
  readonly losses: Loss[] = [];
  readonly gc = { runs: 0, refused: 0, chunksSwept: 0, bytesFreed: 0 };
  verifyRuns = 0;
  errorCount = 0;
  /** Distinct error messages (first MAX_SAMPLES) and how often each came. */
  private readonly errorsSeen = new Map<string, number>();
  private readonly lossesSeen = new Set<string>();
  readonly transientAlarms: string[] = [];
  private readonly started = performance.now();

  /** Seconds since the soak started. */
  elapsed(): number {
    return Math.round((performance.now() - this.started) / 100) / 10;
  }

  /** An operation the CLI reported as done. */
  op(kind: string): void {
    this.operations[kind] = (this.operations[kind] ?? 0) + 1;
  }

  /** An operation a kill cut off (its outcome is resolved later). */
  unknown(kind: string): void {
    this.unknownOutcomes[kind] = (this.unknownOutcomes[kind] ?? 0) + 1;
  }

  /** A check made (an export compared, a listing compared, a verify). */
  check(kind: string): void {
    this.checks[kind] = (this.checks[kind] ?? 0) + 1;
  }

  /** Something reported as done that did not hold. */
  loss(what: string, expected: string, got: string): void {
    this.losses.push({ what, expected, got: got.trim().slice(0, 600), atSeconds: this.elapsed() });
  }

  /** Verify damage under load that a second verify did not confirm. */
  transient(note: string): void {
    if (this.transientAlarms.length < MAX_SAMPLES) this.transientAlarms.push(`at ${this.elapsed()} s: ${note}`);
  }

  /** A CLI failure that was neither a kill nor a loss (kept: it may be a soak or node bug). */
  error(what: string, stderr: string): void {
    this.errorCount++;
    const key = `${what}: ${stderr.trim().slice(0, 300)}`;
    const n = this.errorsSeen.get(key);
    if (n !== undefined) this.errorsSeen.set(key, n + 1);
    else if (this.errorsSeen.size < MAX_SAMPLES) this.errorsSeen.set(key, 1);
  }

  /** The distinct errors, each with its count. */
  errorSamples(): string[] {
    return [...this.errorsSeen].map(([k, n]) => (n > 1 ? `${n}x ${k}` : k));
  }

  /** A loss that repeats (the same failure every run of a loop) is recorded once. */
  lossOnce(what: string, expected: string, got: string): void {
    const key = `${what}\n${got}`;
    if (this.lossesSeen.has(key)) return;
    this.lossesSeen.add(key);
    this.loss(what, expected, got);
  }
}

const sum = (r: Record<string, number>): number => Object.values(r).reduce((n, v) => n + v, 0);
const list = (r: Record<string, number>): string =>
  Object.entries(r)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${v}`)
    .join(', ') || '-';

/** The report as a readable table (and the losses, one per line). */
export function formatReport(r: SoakReport): string {
  const rows: [string, string][] = [
    ['seed', String(r.seed)],
    ['duration', `${r.seconds.toFixed(1)} s load + ${r.finalCheckSeconds.toFixed(1)} s final check, ${r.clients} clients`],
    ['operations done', `${sum(r.operations)} (${list(r.operations)})`],
    ['unknown outcomes (cut by a kill)', `${sum(r.unknownOutcomes)} (${list(r.unknownOutcomes)})`],
    ['kills / restarts', `${r.kills} / ${r.restarts} (node down ${r.downSeconds.toFixed(1)} s in all)`],
    [
      'gc runs',
      `${r.gc.runs} (${r.gc.chunksSwept} chunks swept, ${(r.gc.bytesFreed / 1048576).toFixed(1)} MiB freed); refused with DATA_LOSS: ${r.gc.refused}`,
    ],
    ['verify runs', String(r.verifyRuns)],
    ['checks made', `${sum(r.checks)} (${list(r.checks)})`],
    ['other CLI errors', String(r.errors.count)],
    ['transient verify alarms', String(r.transientAlarms.length)],
    ['LOSSES', String(r.losses.length)],
  ];
  const w = Math.max(...rows.map(([k]) => k.length));
  const lines = rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`);
  for (const l of r.losses) lines.push(`  LOSS at ${l.atSeconds} s: ${l.what}\n    expected: ${l.expected}\n    got:      ${l.got}`);
  for (const e of r.errors.samples) lines.push(`  error: ${e}`);
  for (const a of r.transientAlarms) lines.push(`  transient: ${a}`);
  return lines.join('\n');
}
