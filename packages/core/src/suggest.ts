/**
 * "Did you mean …?" for a name that was not found: the candidates a person most likely meant.
 * A candidate equal but for letter case comes first (labels and VM names are case-sensitive,
 * so `web@nightly` does not reach `web@Nightly`); then those within a small edit distance.
 */

/** Levenshtein distance (insert, delete, substitute) between two short strings. */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitute = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, substitute));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** Up to `max` candidates close to `wanted`, closest first; empty when none is close. */
export function closestNames(wanted: string, candidates: readonly string[], max = 3): string[] {
  const lower = wanted.toLowerCase();
  // Two edits, or a third of the name for long names: far enough for typos, not for guesses.
  const limit = Math.max(2, Math.floor(wanted.length / 3));
  return [...new Set(candidates)]
    .filter((c) => c !== wanted)
    .map((c) => ({ c, d: c.toLowerCase() === lower ? 0 : editDistance(lower, c.toLowerCase()) }))
    .filter(({ d }) => d <= limit)
    .sort((x, y) => x.d - y.d || x.c.localeCompare(y.c))
    .slice(0, max)
    .map(({ c }) => c);
}
