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

/**
 * JSON for scripts, the same way in every command: bytes (a VM's hypervisor config) as base64,
 * and a field that is not set (the wire's '' or empty bytes) left out rather than printed as "".
 * The holder's own value is read because JSON.stringify has already called Buffer's toJSON
 * ({"type":"Buffer","data":[…]}) by the time a replacer sees `value`.
 */
function jsonField(this: unknown, key: string, value: unknown): unknown {
  const own = (this as Record<string, unknown>)[key];
  if (own instanceof Uint8Array) return own.length === 0 ? undefined : Buffer.from(own.buffer, own.byteOffset, own.byteLength).toString('base64');
  return value === '' ? undefined : value;
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonField, 2)}\n`);
}

export function printFields(fields: Record<string, string | number>): void {
  const w = Math.max(...Object.keys(fields).map((k) => k.length));
  for (const [k, v] of Object.entries(fields)) process.stdout.write(`${k.padEnd(w)}  ${v}\n`);
}
