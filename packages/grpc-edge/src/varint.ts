/*
 * Protobuf varints, for the hand-written encoders of the bulk messages (wire-extent.ts,
 * wire-transfer.ts), which skip the generated code's copies of the payload. Numbers up to
 * 2^53 (arithmetic, not bit operations, so values past 2^31 stay exact).
 */

/** Bytes a varint of `n` takes. */
export function varintLength(n: number): number {
  let len = 1;
  for (let v = n; v >= 128; v = Math.floor(v / 128)) len++;
  return len;
}

/** Writes `n` as a varint at `at`; returns the offset after it. */
export function writeVarint(buf: Buffer, at: number, n: number): number {
  let v = n;
  let i = at;
  while (v >= 128) {
    buf[i++] = (v % 128) | 0x80;
    v = Math.floor(v / 128);
  }
  buf[i++] = v;
  return i;
}
