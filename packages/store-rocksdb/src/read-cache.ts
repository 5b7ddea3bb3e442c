/*
 * Verified chunk bytes recently read, bounded by bytes (least recently used out first).
 *
 * Chunks are immutable and named by their content, so a cached chunk is always the right
 * bytes for its id: there is nothing to invalidate. What it saves is a RocksDB read and a
 * decode with its BLAKE3 check, for the chunks read again and again: a gold image's blocks
 * shared by many clones (a VDI boot storm), a guest's hot set. `verify` does not read
 * through it (ChunkPipeline.check reads the stored records).
 *
 * Callers must not modify a buffer they get: it is the cached one.
 */
export class ReadCache {
  private readonly map = new Map<string, Buffer>();
  private bytes = 0;

  constructor(private readonly capacityBytes: number) {}

  get(key: string): Buffer | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }

  set(key: string, value: Buffer): void {
    if (value.length > this.capacityBytes / 16) return;
    const old = this.map.get(key);
    if (old) this.bytes -= old.length;
    this.map.delete(key);
    this.map.set(key, value);
    this.bytes += value.length;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.capacityBytes) break;
      this.map.delete(k);
      this.bytes -= v.length;
    }
  }
}
