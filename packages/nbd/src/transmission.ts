/*
 * Serving one connection's requests.
 *
 * Ordering: requests are admitted in arrival order, and each waits for the earlier requests it
 * conflicts with, then runs alongside the rest: a read, CACHE or BLOCK_STATUS waits for earlier
 * writes (WRITE, TRIM, WRITE_ZEROES) that overlap its range; a write waits for earlier
 * requests of any kind that overlap its range; a FLUSH waits for every earlier write. So on one
 * connection a read sees exactly the earlier writes to its bytes, overlapping writes apply in
 * the order sent, a write never changes what an earlier read returns, and a FLUSH covers every
 * write sent before it (proto.md asks only for those already acknowledged). Non-overlapping
 * writes run concurrently, which is what lets a queue depth of 16 random writes, or 1 MiB
 * sequential writes, keep the backend busy. Concurrent writes into one block from one
 * connection or many are ordered by the backend (page writes under its gate).
 *
 * Replies: each reply (a simple reply with its data, or all chunks of a structured reply)
 * is built completely and handed to `send` in one call, which writes it within one tick, so
 * no other reply can land inside it.
 *
 * Durability: a WRITE/TRIM/WRITE_ZEROES is acknowledged once it is in the backend (visible
 * to every connection); with FUA, and for FLUSH, only once the backend says it is durable.
 */
import { InvalidArgumentError, type AllocationRun } from '@vmferry/core';
import { BASE_ALLOCATION_ID, CMD, CMD_FLAG, NBD_ERRNO } from './constants.js';
import { errnoOf } from './errno.js';
import type { Agreed } from './negotiation.js';
import {
  encodeBlockStatusChunk,
  encodeDataChunk,
  encodeErrorChunk,
  encodeHoleChunk,
  encodeNoneChunk,
  encodeSimpleReply,
  type NbdRequest,
} from './transmission-codec.js';

/** Requests of one connection served or queued at once; past it the socket stops being read. */
export const MAX_IN_FLIGHT = 16;
/**
 * Payload bytes (read lengths and write data) of one connection in flight at once, so a
 * client pipelining 32 MiB reads cannot make the server hold 16 × 32 MiB. One request is
 * always admitted when nothing is in flight.
 */
export const MAX_IN_FLIGHT_BYTES = 64 * 1024 * 1024;
/** Most descriptors in one BLOCK_STATUS chunk (proto.md: SHOULD NOT exceed 2^20). */
const MAX_DESCRIPTORS = 1 << 20;

/** Commands that change the export's bytes. */
const WRITES: ReadonlySet<number> = new Set([CMD.WRITE, CMD.TRIM, CMD.WRITE_ZEROES]);

/** A request admitted and not yet answered: what later requests may have to wait for. */
interface Admitted {
  readonly writes: boolean;
  readonly flush: boolean;
  readonly from: number;
  readonly to: number;
  readonly done: Promise<void>;
}

/** Whether `later` must wait for `earlier` (the header's ordering rules). */
function mustWait(earlier: Admitted, later: Admitted): boolean {
  if (later.flush) return earlier.writes;
  if (earlier.flush || (!earlier.writes && !later.writes)) return false;
  return earlier.from < later.to && later.from < earlier.to;
}

/** Command flags each command accepts (FUA is valid on every command once SEND_FUA is offered). */
const FLAGS_OF: Readonly<Record<number, number>> = {
  [CMD.READ]: CMD_FLAG.FUA | CMD_FLAG.DF,
  [CMD.WRITE]: CMD_FLAG.FUA,
  [CMD.FLUSH]: CMD_FLAG.FUA,
  [CMD.TRIM]: CMD_FLAG.FUA,
  [CMD.CACHE]: CMD_FLAG.FUA,
  [CMD.WRITE_ZEROES]: CMD_FLAG.FUA | CMD_FLAG.NO_HOLE | CMD_FLAG.FAST_ZERO,
  [CMD.BLOCK_STATUS]: CMD_FLAG.FUA | CMD_FLAG.REQ_ONE,
};

/** A request refused before it reached the backend, with the error value proto.md asks for. */
class Refused extends InvalidArgumentError {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super(message);
  }
}

export interface TransmissionHooks {
  /** Writes one whole reply. */
  send(parts: readonly Buffer[]): void;
  /** A request finished: the connection may read more. */
  settled(): void;
  /** The export went away (its VM or snapshot was deleted): end the connection. */
  exportGone(): void;
}

export class Transmission {
  private readonly admitted = new Set<Admitted>();
  private inFlight = 0;
  private inFlightBytes = 0;

  constructor(
    private readonly agreed: Agreed,
    private readonly hooks: TransmissionHooks,
  ) {}

  get saturated(): boolean {
    return this.inFlight >= MAX_IN_FLIGHT || this.inFlightBytes >= MAX_IN_FLIGHT_BYTES;
  }

  /** Admits a request (not DISC) in arrival order; its reply is sent when it completes. */
  accept(req: NbdRequest): void {
    const bytes = req.type === CMD.READ || req.type === CMD.WRITE ? req.length : 0;
    this.inFlight++;
    this.inFlightBytes += bytes;
    let finished!: () => void;
    const entry: Admitted = {
      writes: WRITES.has(req.type),
      flush: req.type === CMD.FLUSH,
      from: req.offset,
      // An empty range still orders against writes at its offset (a zero-length write is a no-op).
      to: req.offset + Math.max(1, req.length),
      done: new Promise((r) => (finished = r)),
    };
    const before = [...this.admitted].filter((e) => mustWait(e, entry)).map((e) => e.done);
    this.admitted.add(entry);
    void (async () => {
      try {
        if (before.length > 0) await Promise.all(before);
        await this.serve(req);
      } finally {
        this.admitted.delete(entry);
        finished();
        this.inFlight--;
        this.inFlightBytes -= bytes;
        this.hooks.settled();
      }
    })();
  }

  /** Resolves once every admitted request has been answered. */
  async drain(): Promise<void> {
    await Promise.all([...this.admitted].map((e) => e.done));
  }

  private async serve(req: NbdRequest): Promise<void> {
    try {
      const parts = await this.execute(req);
      this.hooks.send(parts);
    } catch (e) {
      const { errno, message, exportGone } = e instanceof Refused ? { errno: e.errno, message: e.message, exportGone: false } : errnoOf(e);
      this.hooks.send([this.agreed.structured ? encodeErrorChunk(req.cookie, errno, message) : encodeSimpleReply(req.cookie, errno)]);
      if (exportGone) this.hooks.exportGone();
    }
  }

  private ok(req: NbdRequest): Buffer[] {
    return [this.agreed.structured ? encodeNoneChunk(req.cookie) : encodeSimpleReply(req.cookie, 0)];
  }

  /** The checks proto.md asks for, before the backend sees the request. */
  private check(req: NbdRequest, pastEnd: number): void {
    const allowed = FLAGS_OF[req.type];
    if (allowed === undefined) throw new Refused(NBD_ERRNO.EINVAL, `unknown command ${req.type}`);
    if ((req.flags & ~allowed) !== 0) throw new Refused(NBD_ERRNO.EINVAL, `command ${req.type} does not take flags 0x${req.flags.toString(16)}`);
    if (req.offset + req.length > this.agreed.export.size) {
      throw new Refused(pastEnd, `[${req.offset}, ${req.offset + req.length}) ends past the end of the ${this.agreed.export.size}-byte export`);
    }
  }

  private checkWritable(): void {
    if (this.agreed.export.readOnly) throw new Refused(NBD_ERRNO.EPERM, `export '${this.agreed.export.name}' is read-only`);
  }

  private async execute(req: NbdRequest): Promise<Buffer[]> {
    const exp = this.agreed.export;
    const fua = (req.flags & CMD_FLAG.FUA) !== 0;
    switch (req.type) {
      case CMD.READ:
        this.check(req, NBD_ERRNO.EINVAL);
        return this.read(req);
      case CMD.WRITE:
        this.checkWritable();
        this.check(req, NBD_ERRNO.ENOSPC);
        if (req.length > 0) await exp.write(req.offset, req.data, { fua });
        return this.ok(req);
      case CMD.FLUSH:
        this.check(req, NBD_ERRNO.EINVAL);
        await exp.flush();
        return this.ok(req);
      case CMD.TRIM:
        this.checkWritable();
        this.check(req, NBD_ERRNO.EINVAL);
        if (req.length > 0) await exp.trim(req.offset, req.length, { fua });
        return this.ok(req);
      case CMD.WRITE_ZEROES:
        this.checkWritable();
        this.check(req, NBD_ERRNO.ENOSPC);
        // Zeroing writes holes, cheaper than any write (no hashing, no data): FAST_ZERO holds.
        // NO_HOLE changes nothing: a hole is never a space risk here, zero blocks are never stored.
        if (req.length > 0) await exp.zero(req.offset, req.length, { fua });
        return this.ok(req);
      case CMD.CACHE:
        this.check(req, NBD_ERRNO.EINVAL);
        return this.ok(req);
      case CMD.BLOCK_STATUS:
        if (!this.agreed.allocationContext) throw new Refused(NBD_ERRNO.EINVAL, 'no metadata context was selected for this export');
        this.check(req, NBD_ERRNO.EINVAL);
        return this.blockStatus(req);
      default:
        this.check(req, NBD_ERRNO.EINVAL);
        throw new Refused(NBD_ERRNO.EINVAL, `unknown command ${req.type}`);
    }
  }

  private async read(req: NbdRequest): Promise<Buffer[]> {
    const exp = this.agreed.export;
    if (!this.agreed.structured) {
      const data = Buffer.alloc(req.length);
      for await (const p of exp.read(req.offset, req.length)) p.data?.copy(data, p.offset - req.offset);
      return [encodeSimpleReply(req.cookie, 0), data];
    }
    if (req.length === 0) return this.ok(req);
    if ((req.flags & CMD_FLAG.DF) !== 0) {
      const data = Buffer.alloc(req.length);
      for await (const p of exp.read(req.offset, req.length)) p.data?.copy(data, p.offset - req.offset);
      return encodeDataChunk(req.cookie, true, req.offset, data);
    }
    const pieces = [];
    for await (const p of exp.read(req.offset, req.length)) if (p.length > 0) pieces.push(p);
    return pieces.flatMap((p, i) => {
      const done = i === pieces.length - 1;
      return p.data ? encodeDataChunk(req.cookie, done, p.offset, p.data) : [encodeHoleChunk(req.cookie, done, p.offset, p.length)];
    });
  }

  private async blockStatus(req: NbdRequest): Promise<Buffer[]> {
    if (req.length === 0) throw new Refused(NBD_ERRNO.EINVAL, 'BLOCK_STATUS of 0 bytes');
    const runs = merge(await this.agreed.export.allocation(req.offset, req.length));
    const first = runs[0];
    if (!first) throw new Refused(NBD_ERRNO.EIO, 'the backend reported no allocation for the range');
    const chosen = (req.flags & CMD_FLAG.REQ_ONE) !== 0 ? [{ length: Math.min(first.length, req.length), hole: first.hole }] : runs.slice(0, MAX_DESCRIPTORS);
    return [encodeBlockStatusChunk(req.cookie, true, BASE_ALLOCATION_ID, chosen)];
  }
}

/** Adjacent runs of the same kind as one descriptor (proto.md: SHOULD differ between neighbours). */
function merge(runs: readonly AllocationRun[]): AllocationRun[] {
  const out: AllocationRun[] = [];
  for (const r of runs) {
    if (r.length === 0) continue;
    const last = out[out.length - 1];
    if (last && last.hole === r.hole) out[out.length - 1] = { length: last.length + r.length, hole: r.hole };
    else out.push(r);
  }
  return out;
}
