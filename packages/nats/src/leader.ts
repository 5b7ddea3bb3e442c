/*
 * Leader election through a KV lease. Debian's nats-server 2.9 has no per-key TTL, so the
 * lease bucket's TTL (LEADER_TTL_MS) expires a key LEADER_TTL_MS after its last write. The
 * leader heartbeats with compare-and-swap (update at the revision it last wrote) every
 * third of the TTL; a follower tries create() on the same beat and wins once the dead
 * leader's key has expired. A leader whose heartbeat fails steps down at once, and renews at
 * its last revision when it can (it still holds the lease if no one else took it).
 */
import type { KV } from '@nats-io/kv';
import { LEADER_TTL_MS } from './coordination.js';

export class LeaderLease {
  private revision = 0;
  private timer: NodeJS.Timeout | undefined;
  private leading = false;

  constructor(
    private readonly kv: KV,
    private readonly key: string,
    readonly id: string,
    private readonly onChange: (leading: boolean) => void = () => undefined,
    private readonly beatMs = Math.floor(LEADER_TTL_MS / 3),
  ) {}

  get isLeader(): boolean {
    return this.leading;
  }

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), this.beatMs);
  }

  private set(leading: boolean): void {
    if (leading !== this.leading) {
      this.leading = leading;
      this.onChange(leading);
    }
  }

  private async beat(): Promise<void> {
    const value = JSON.stringify({ id: this.id, atMs: Date.now() });
    // A holder that lost contact (a NATS restart) first tries to renew at its last revision:
    // if nobody took the lease meanwhile, that succeeds and it leads again at once.
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
    } catch {
      this.set(false);
    }
  }

  /** Stops heartbeating and, when leading, releases the lease so another takes over now. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.leading) {
      this.set(false);
      await this.kv.delete(this.key, { previousSeq: this.revision }).catch(() => undefined);
    }
  }
}
