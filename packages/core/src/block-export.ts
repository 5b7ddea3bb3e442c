/**
 * A vDisk served as a block device (to NBD clients, say): the port a block-protocol adapter
 * calls, implemented by whoever owns the data (the storage node). Pure types, no I/O.
 *
 * Contract: every method rejects with a coded VmferryError (core/errors.ts). `not-found`
 * means the export itself is gone (its VM or snapshot was deleted): the adapter ends the
 * session. A write that resolved is visible to every later read on any connection; it is
 * durable once `flush()` (or a write with `fua`) has resolved.
 */

/** A piece of a read, in order: `data` (exactly `length` bytes) or, when absent, zeros. */
export interface ReadPiece {
  readonly offset: number;
  readonly length: number;
  readonly data?: Buffer;
}

/** A run of bytes that is allocated (data) or a hole that reads as zeros. */
export interface AllocationRun {
  readonly length: number;
  readonly hole: boolean;
}

export interface WriteOptions {
  /** Force unit access: resolve only once these bytes are durable. */
  readonly fua: boolean;
}

/** One opened export (a live vDisk or a snapshot's vDisk). */
export interface BlockExport {
  /** The name the client asked for. */
  readonly name: string;
  readonly size: number;
  readonly readOnly: boolean;
  /** The block size below which writes read-modify-write: the export's efficient I/O size. */
  readonly preferredBlockSize: number;
  /** Pieces covering exactly [offset, offset + length), in order. */
  read(offset: number, length: number): AsyncIterable<ReadPiece>;
  write(offset: number, data: Buffer, options: WriteOptions): Promise<void>;
  /** Makes every write that resolved before this call durable. */
  flush(): Promise<void>;
  /** The range may read back as anything later; here it reads as zeros (holes). */
  trim(offset: number, length: number, options: WriteOptions): Promise<void>;
  /** The range reads back as zeros. */
  zero(offset: number, length: number, options: WriteOptions): Promise<void>;
  /** Runs covering [offset, offset + length) in order; their lengths add up to `length`. */
  allocation(offset: number, length: number): Promise<AllocationRun[]>;
  close(): Promise<void>;
}

/** The exports a server offers. */
export interface BlockExports {
  /** Names a client may open (for listing; `open` may accept more). */
  list(): Promise<string[]>;
  /** Rejects with a `not-found` error naming the export when there is none by that name. */
  open(name: string): Promise<BlockExport>;
}
