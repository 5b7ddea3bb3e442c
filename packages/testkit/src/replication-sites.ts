/**
 * Replication test fixtures: certificates (deploy/mint-certs.sh), sites (storage nodes with
 * a replication endpoint), deterministic random data and export hashing.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, runCli } from './cli.js';
import { sha256File } from './disk-images.js';
import { startNodeProcess, type NodeProcess } from './node-process.js';

/** The repository's certificate minting script. */
export const MINT_CERTS = join(__dirname, '..', '..', '..', '..', 'deploy', 'mint-certs.sh');

/** Mints (or adds to) a CA in `dir` and one certificate per site (CN=site). */
export function mintCerts(dir: string, sites: readonly string[], days?: number): void {
  execFileSync('bash', [MINT_CERTS, dir, ...sites, ...(days === undefined ? [] : ['--days', String(days)])], { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface Site {
  readonly name: string;
  readonly dataDir: string;
  readonly certDir: string;
  /** The node's API address. */
  readonly api: string;
  /** The replication endpoint (mTLS). */
  readonly repl: string;
  readonly proc: NodeProcess;
}

/** Starts a site: a storage node named `name` serving replication with DIR/<name>.crt (plus `extraArgs`, e.g. --nbd-socket). */
export async function startSite(name: string, dataDir: string, certDir: string, extraArgs: readonly string[] = []): Promise<Site> {
  const proc = await startNodeProcess({
    dataDir,
    extraArgs: [
      '--site',
      name,
      '--replication-listen',
      '127.0.0.1:0',
      '--tls-cert',
      join(certDir, `${name}.crt`),
      '--tls-key',
      join(certDir, `${name}.key`),
      '--tls-ca',
      join(certDir, 'ca.crt'),
      ...extraArgs,
    ],
  });
  const repl = proc.replicationAddress ?? /replication endpoint \(mTLS, read-only\) on (\S+)/.exec(proc.log())?.[1];
  if (!repl) {
    await proc.stop();
    throw new Error(`site ${name} printed no replication endpoint:\n${proc.log()}`);
  }
  return { name, dataDir, certDir, api: proc.address, repl, proc };
}

/** Registers `source` at `target` (to pull from it) and `target` at `source` (the allow-list). */
export async function pairSites(source: Site, target: Site): Promise<void> {
  await cliJson(target.api, ['site', 'add', source.name, '--replication', source.repl, '--identity', source.name]);
  await cliJson(source.api, ['site', 'add', target.name, '--identity', target.name]);
}

/** Deterministic pseudo-random bytes (sha256 in counter mode) from `seed`. */
export function seededBytes(seed: string, n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  const key = createHash('sha256').update(seed).digest();
  let off = 0;
  for (let i = 0; off < n; i++) {
    const ctr = Buffer.alloc(8);
    ctr.writeBigUInt64LE(BigInt(i));
    off += createHash('sha256').update(key).update(ctr).digest().copy(out, off);
  }
  return out;
}

/** Writes `data` into vDisk `index` of `vm` at `offset` via `disk write`. */
export async function writeDisk(api: string, vm: string, index: number, data: Buffer, offset = 0): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'vmferry-write-'));
  try {
    const file = join(dir, 'data.bin');
    writeFileSync(file, data);
    await cliJson(api, ['disk', 'write', vm, String(index), file, '--offset', String(offset)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** sha256 of `disk export REF INDEX` at `api`. */
export async function exportSha(api: string, ref: string, index = 0): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'vmferry-export-'));
  try {
    const file = join(dir, 'disk.raw');
    const r = await runCli(api, ['disk', 'export', ref, String(index), file]);
    if (r.code !== 0) throw new Error(`disk export ${ref} at ${api} failed (${r.code}): ${r.stderr}`);
    return await sha256File(file);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
