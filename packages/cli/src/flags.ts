/** Checks of flag values the CLI reads itself (service flags are checked by each service's config). */
import { InvalidArgumentError } from '@vmferry/core';

/**
 * A flag's value as a whole number in [min, max].
 * @throws InvalidArgumentError naming the flag, for "x", "", "1.5", "1e3" or a number out of range.
 */
export function wholeNumberFlag(flag: string, value: string, min: number, max: number): number {
  const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${flag} must be a whole number from ${min} to ${max}, not '${value}'`);
  return n;
}
