/*
 * Leader election through a KV lease. Debian's nats-server 2.9 has no per-key TTL, so the
 * lease bucket's TTL (LEADER_TTL_MS) expires a key LEADER_TTL_MS after its last write. The
 * leader heartbeats with compare-and-swap (update at the revision it last wrote) every
 * third of the TTL; a follower tries create() on the same beat and wins once the dead
 * leader's key has expired.
 *
 * One heartbeat runs at a time (a slow one during a NATS outage must not overlap the next).
 * A holder that lost contact takes the lease back at once when the key still carries its own
 * id (nobody took it meanwhile). stop() waits for a heartbeat in flight, then releases.
 */
import type { KV } from '@nats-io/kv';
import { LEADER_TTL_MS } from './coordination.js';

export class LeaderLease {
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;
  private beating: Promise<void> | undefined;
  private stopped = false;
  private settledAt = -Infinity;

  /**
   * `beatMs`: a third of the lease bucket's TTL (see CoordinationTiming.leaderTtlMs);
   * `now`: the clock written into the lease value (who holds it since when).
   */
  constructor(
    private readonly kv: KV,
    private readonly key: string,
    readonly id: string,
    private readonly onChange: (leading: boolean) => void = () => undefined,
    private readonly beatMs = Math.floor(LEADER_TTL_MS / 3),
    private readonly now: () => number = Date.now,
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * When the newest finished heartbeat started (-Infinity before the first). Heartbeats run
   * one at a time, so once one that started at T has finished, every earlier one has too.
   */
  get settledSinceMs(): number {
    return this.settledAt;
  }

  async start(): Promise<void> {
    await this.tick();
    this.timer = setInterval(() => void this.tick(), this.beatMs);
  }

  private set(leading: boolean): void {
    if (leading !== this.leading) {
      this.leading = leading;
      this.onChange(leading);
    }
  }

  private tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    if (this.beating === undefined) {
      const startedAt = this.now();
      this.beating = this.beat().finally(() => {
        this.beating = undefined;
        this.settledAt = startedAt;
      });
    }
    return this.beating;
  }

  private async beat(): Promise<void> {
    const value = JSON.stringify({ id: this.id, atMs: this.now() });
    if (this.revision > 0) {
      try {
        this.revision = await this.kv.update(this.key, value, this.revision);
        this.set(true);
        return;
      } catch {
        this.revision = 0;
      }
    }
    try {
      this.revision = await this.kv.create(this.key, value);
      this.set(true);
      return;
    } catch {
      // Held by someone: maybe by us, from before a lost heartbeat.
    }
    try {
      const held = await this.kv.get(this.key);
      if (held && held.operation === 'PUT' && held.json<{ id: string }>().id === this.id) {
        this.revision = await this.kv.update(this.key, value, held.revision);
        this.set(true);
        return;
      }
    } catch {
      // NATS unreachable or raced: not leading this beat.
    }
    this.set(false);
  }

  /** Stops heartbeating and, when leading, releases the lease so another takes over now. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.beating;
    if (this.leading) {
      this.set(false);
      await this.kv.delete(this.key, { previousSeq: this.revision }).catch(() => undefined);
    }
  }
}
