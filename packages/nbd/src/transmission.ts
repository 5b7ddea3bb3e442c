/*
 * Serving one connection's requests.
 *
 * Ordering: requests are admitted in arrival order into a FIFO readers-writer lock. Reads,
 * CACHE and BLOCK_STATUS are shared, so a pipelined batch of reads is served concurrently;
 * WRITE, TRIM, WRITE_ZEROES and FLUSH are exclusive, so each starts only after every earlier
 * request has finished and before any later one starts. So on one connection a read sees
 * exactly the writes sent before it, writes apply in the order sent, and a FLUSH runs after
 * every earlier write has been acknowledged — stricter than proto.md requires (it lets the
 * server reorder), and simple to reason about. Writes from different connections are
 * ordered by the backend (per-block commits, a mutex for partial blocks).
 *
 * Replies: each reply (a simple reply with its data, or all chunks of a structured reply)
 * is built completely and handed to `send` in one call, which writes it within one tick, so
 * no other reply can land inside it.
 *
 * Durability: a WRITE/TRIM/WRITE_ZEROES is acknowledged once it is in the backend (visible
 * to every connection); with FUA, and for FLUSH, only once the backend says it is durable.
 */
import { InvalidArgumentError, RwLock, type AllocationRun } from '@vmferry/core';
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

const WRITES: ReadonlySet<number> = new Set([CMD.WRITE, CMD.TRIM, CMD.WRITE_ZEROES, CMD.FLUSH]);

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
  private readonly order = new RwLock();
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
    const run = (): Promise<void> => this.serve(req);
    const done = WRITES.has(req.type) ? this.order.exclusive(run) : this.order.shared(run);
    void done.finally(() => {
      this.inFlight--;
      this.inFlightBytes -= bytes;
      this.hooks.settled();
    });
  }

  /** Resolves once every admitted request has been answered. */
  drain(): Promise<void> {
    return this.order.exclusive(() => Promise.resolve());
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
