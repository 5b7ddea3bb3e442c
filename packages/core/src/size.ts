import { InvalidArgumentError } from './errors.js';

const UNITS: Record<string, number> = {
  '': 1,
  B: 1,
  K: 1024,
  KB: 1024,
  KIB: 1024,
  M: 1024 ** 2,
  MB: 1024 ** 2,
  MIB: 1024 ** 2,
  G: 1024 ** 3,
  GB: 1024 ** 3,
  GIB: 1024 ** 3,
  T: 1024 ** 4,
  TB: 1024 ** 4,
  TIB: 1024 ** 4,
};

/**
 * Parses a size such as `4096`, `64K`, `1.5G` or `10GiB` into bytes. Units are binary
 * (K = 1024), as disk sizes are. Throws InvalidArgumentError for anything else, or for a
 * size that is not a whole number of bytes.
 */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m?.[2]?.toUpperCase() ?? '';
  const mult = UNITS[unit];
  if (!m || mult === undefined) {
    throw new InvalidArgumentError(`'${text}' is not a size (examples: 4096, 64K, 10G, 1T)`);
  }
  const bytes = Number(m[1]) * mult;
  // 2^53 bytes (8 PiB) is where numbers stop being exact; the wire and the store use them.
  if (bytes > Number.MAX_SAFE_INTEGER) {
    throw new InvalidArgumentError(`'${text}' is too large: sizes and offsets must be below 2^53 bytes (8 PiB)`);
  }
  if (!Number.isSafeInteger(bytes)) {
    throw new InvalidArgumentError(`'${text}' is not a whole number of bytes`);
  }
  return bytes;
}

/** Formats bytes for people: 1536 → "1.50 KiB", 20 MiB → "20.0 MiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}
