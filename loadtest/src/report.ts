/** Where every benchmark and the soak leave their JSON report: loadtest/reports/NAME-TIME.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Writes `doc` as NAME-<ISO time>.json under loadtest/reports (created when missing); returns the path. */
export function writeReport(name: string, doc: unknown): string {
  const dir = join(__dirname, '..', '..', 'reports');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(doc, null, 2));
  return file;
}
