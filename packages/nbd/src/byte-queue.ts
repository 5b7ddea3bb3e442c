/**
 * Bytes received and not yet parsed. Frames may arrive split anywhere (one byte at a time,
 * or many frames in one TCP segment), so decoders peek at what is there and take a frame
 * only once it is complete.
 */
export class ByteQueue {
  private parts: Buffer[] = [];
  private total = 0;

  get length(): number {
    return this.total;
  }

  push(data: Buffer): void {
    if (data.length === 0) return;
    this.parts.push(data);
    this.total += data.length;
  }

  /** The first `n` bytes without consuming them; undefined when fewer have arrived. */
  peek(n: number): Buffer | undefined {
    if (n > this.total) return undefined;
    this.gather(n);
    return (this.parts[0] as Buffer).subarray(0, n);
  }

  /** Consumes and returns the first `n` bytes; undefined when fewer have arrived. */
  take(n: number): Buffer | undefined {
    if (n > this.total) return undefined;
    if (n === 0) return Buffer.alloc(0);
    this.gather(n);
    const first = this.parts[0] as Buffer;
    const out = first.subarray(0, n);
    if (first.length === n) this.parts.shift();
    else this.parts[0] = first.subarray(n);
    this.total -= n;
    return out;
  }

  /** Makes the first part at least `n` bytes long (n ≤ total). */
  private gather(n: number): void {
    const first = this.parts[0];
    if (first && first.length >= n) return;
    let k = 0;
    let have = 0;
    while (have < n) have += (this.parts[k++] as Buffer).length;
    const merged = Buffer.concat(this.parts.slice(0, k), have);
    this.parts.splice(0, k, merged);
  }
}
