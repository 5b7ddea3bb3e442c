/**
 * The storage node under soak: one process on a fixed data directory and port, SIGKILLed and
 * restarted by the killer. Every CLI call goes through `cli()`, which waits while the node
 * is down and tells a failure caused by a kill (outcome unknown) from any other failure.
 */
import { execFile } from 'node:child_process';
import { isVmferryError, type ErrorCode } from '@vmferry/core';
import { connectStorageNode, type GcReportView, type StorageNodeClient } from '@vmferry/grpc-edge';
import { startNodeProcess, VMFERRY_BIN, type NodeProcess } from '@vmferry/testkit';

/** How one CLI call ended. */
export interface CliOutcome {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The call failed and the node was killed while it ran: it may or may not have happened. */
  readonly interrupted: boolean;
}

/** A CLI call that hangs this long is abandoned (and counts as failed). */
const CLI_TIMEOUT_MS = 120_000;

/** Controls the node process: start, SIGKILL, restart on the same data and port. */
export class NodeControl {
  /** Bumped at every kill; a call spanning a change of epoch may have been cut off. */
  private epoch = 0;
  private proc: NodeProcess | undefined;
  private up: Promise<void> = Promise.resolve();
  private address = '';
  private grpcClient: StorageNodeClient | undefined;
  private grpcEpoch = -1;
  kills = 0;
  restarts = 0;
  /** Milliseconds the node was down (from a kill or stop until it listens again). */
  downMs = 0;

  constructor(private readonly dataDir: string) {}

  /** Starts the node (first on a free port, later on the same one). */
  async start(): Promise<void> {
    const listen = this.address || '127.0.0.1:0';
    this.proc = await startNodeProcess({ dataDir: this.dataDir, listen });
    this.address = this.proc.address;
  }

  /** SIGKILL now and restart; calls made meanwhile wait for the new process. */
  async killAndRestart(): Promise<void> {
    await this.cycle(async () => {
      await this.proc?.kill();
      this.kills++;
    });
  }

  /** A clean stop (SIGTERM) and start, for the final check. */
  async stopAndStart(): Promise<void> {
    await this.cycle(async () => {
      await this.proc?.stop();
    });
  }

  /** Takes the node down with `down`, then starts it again; `up` is pending meanwhile. */
  private async cycle(down: () => Promise<void>): Promise<void> {
    await this.up;
    this.epoch++;
    let done: () => void = () => undefined;
    let failed: (e: unknown) => void = () => undefined;
    this.up = new Promise<void>((resolve, reject) => {
      done = resolve;
      failed = reject;
    });
    // A failed restart is reported by whoever waits for the node; keep it from being unhandled.
    this.up.catch(() => undefined);
    const t = performance.now();
    try {
      await down();
      await this.start();
      this.restarts++;
      this.downMs += performance.now() - t;
      done();
    } catch (e) {
      failed(e);
      throw e;
    }
  }

  /** Stops the node (SIGTERM). */
  async stop(): Promise<void> {
    this.grpcClient?.close();
    await this.up.catch(() => undefined);
    await this.proc?.stop();
  }

  /** Resolves when the node is up (rejects if a restart failed). */
  whenUp(): Promise<void> {
    return this.up;
  }

  /**
   * Waits for the node and returns the epoch of the running process. A promise awaited that
   * is still the current one means no kill began meanwhile, so the epoch read is current.
   */
  private async running(): Promise<number> {
    for (let p = this.up; ; p = this.up) {
      await p;
      if (p === this.up) return this.epoch;
    }
  }

  /**
   * One GC run over gRPC (the RunGc call `vmferry gc` makes). Not through the CLI: its start
   * costs ~0.35 s of CPU against GC's milliseconds, so GC would be running (and racing the
   * clients) only a small fraction of the time.
   */
  async gc(): Promise<{ readonly report: GcReportView } | { readonly interrupted: boolean; readonly error: string; readonly code: ErrorCode | undefined }> {
    const epoch = await this.running();
    // A new channel per process: an old one may sit in reconnect backoff after the kill.
    if (!this.grpcClient || this.grpcEpoch !== epoch) {
      this.grpcClient?.close();
      this.grpcClient = connectStorageNode(this.address);
      this.grpcEpoch = epoch;
    }
    const c = this.grpcClient;
    return c.runGc().then(
      (report) => ({ report }),
      (e: unknown) => ({ interrupted: epoch !== this.epoch, error: e instanceof Error ? e.message : String(e), code: isVmferryError(e) ? e.code : undefined }),
    );
  }

  /** Runs `vmferry --node ADDR --json ARGS…` once the node is up. */
  async cli(args: readonly string[]): Promise<CliOutcome> {
    const epoch = await this.running();
    const t = performance.now();
    const r = await execCli(this.address, args);
    // VMFERRY_SOAK_TRACE=1: one line per call on stderr (why a run did little, where time went).
    if (process.env['VMFERRY_SOAK_TRACE'])
      console.error(`    [${(performance.now() - t).toFixed(0)} ms] ${args.join(' ')} -> ${r.code}${r.code ? ` ${r.stderr.trim().slice(0, 120)}` : ''}`);
    return { ...r, interrupted: r.code !== 0 && epoch !== this.epoch };
  }
}

function execCli(node: string, args: readonly string[]): Promise<Omit<CliOutcome, 'interrupted'>> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [VMFERRY_BIN, '--node', node, '--json', ...args],
      { maxBuffer: 16 * 1024 * 1024, timeout: CLI_TIMEOUT_MS },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr: err && !stderr ? err.message : stderr });
      },
    );
  });
}
