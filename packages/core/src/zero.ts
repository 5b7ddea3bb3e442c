const ZEROS = Buffer.alloc(4 * 1024 * 1024);

/** True when every byte is zero. Runs as a native memcmp against a shared zero page. */
export function isZero(data: Uint8Array): boolean {
  let offset = 0;
  while (offset < data.length) {
    const n = Math.min(ZEROS.length, data.length - offset);
    if (Buffer.compare(ZEROS.subarray(0, n), data.subarray(offset, offset + n)) !== 0) return false;
    offset += n;
  }
  return true;
}
