/** Tables for people, one JSON document for scripts. */
export function printTable(rows: readonly Record<string, string | number>[], columns?: readonly string[]): void {
  const cols = columns ?? Object.keys(rows[0] ?? {});
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const widths = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${line(cols.map((c) => c.toUpperCase()))}\n`);
  for (const r of rows) process.stdout.write(`${line(cols.map((c) => String(r[c] ?? '')))}\n`);
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, (_k, v: unknown) => (Buffer.isBuffer(v) ? v.toString('base64') : v), 2)}\n`);
}

export function printFields(fields: Record<string, string | number>): void {
  const w = Math.max(...Object.keys(fields).map((k) => k.length));
  for (const [k, v] of Object.entries(fields)) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
}
