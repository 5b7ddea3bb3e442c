/** Shared helpers for the storage node's process-level tests (not a test file itself). */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, runCli, sha256File, type CliResult } from '@vmferry/testkit';

export const MiB = 1024 * 1024;

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'vmferry-'));
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Shapes of the CLI's --json documents that the tests read. */
export interface VmJson {
  id: string;
  name: string;
  disks: { index: number; size: number; blockSize: number; gridOffset: number }[];
  snapshotCount: number;
  clonedFrom?: { vmId: string; vmName: string; snapshotId: string };
}
export interface SnapshotJson {
  id: string;
  vmName: string;
  label: string;
  disks: { index: number; size: number; root: string; gridOffset: number }[];
}
export interface StatsJson {
  logicalBytes: number;
  storedBytes: number;
  chunkCount: number;
  vmCount: number;
  snapshotCount: number;
}
export interface ExportJson {
  size: number;
  dataBytes: number;
  file: string;
}
export interface VerifyJson {
  chunksChecked: number;
  corrupt: { chunkId: string; reason: string; referencedBy: string[] }[];
  missing: string[];
}

let exportSeq = 0;

/** Exports REF's vDisk to a new file in `dir` with the CLI; returns the file and its sha256. */
export async function exportDisk(node: string, ref: string, dir: string, disk = 0): Promise<{ file: string; hash: string; doc: ExportJson }> {
  const file = join(dir, `export-${++exportSeq}.img`);
  const doc = await cliJson<ExportJson>(node, ['disk', 'export', ref, String(disk), file]);
  return { file, hash: await sha256File(file), doc };
}

/** Exports, hashes and deletes the file (keeps the temp dir small). */
export async function exportHash(node: string, ref: string, dir: string, disk = 0): Promise<string> {
  const { file, hash } = await exportDisk(node, ref, dir, disk);
  rmSync(file, { force: true });
  return hash;
}

/** Writes `data` into VM's live vDisk at `offset` with `vmferry disk write`. */
export async function writeBytes(node: string, vm: string, offset: number, data: Buffer, dir: string, disk = 0): Promise<CliResult> {
  const file = join(dir, `write-${++exportSeq}.bin`);
  writeFileSync(file, data);
  const r = await runCli(node, ['--json', 'disk', 'write', vm, String(disk), file, '--offset', String(offset)]);
  rmSync(file, { force: true });
  return r;
}

/** Asserts the CLI failed with the given gRPC status name (and optional text) on stderr. */
export function assertFailed(r: CliResult, status: string, ...mentions: string[]): void {
  assert.notEqual(r.code, 0, `expected failure ${status}, got success: ${r.stdout}`);
  assert.match(r.stderr, new RegExp(`\\(${status}\\)`), `expected ${status} on stderr: ${r.stderr}`);
  for (const m of mentions) assert.ok(r.stderr.includes(m), `expected stderr to mention '${m}': ${r.stderr}`);
  assert.equal(r.stdout, '', 'a failed command prints nothing on stdout');
}

export function random(n: number): Buffer {
  return randomBytes(n);
}
