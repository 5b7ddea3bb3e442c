/**
 * The libvirt adapter: defines domains by shelling out to `virsh define` (Debian's
 * libvirt-clients), so vmferry VMs appear in the hypervisor's inventory. `uri` is virsh's
 * `-c` (qemu:///system, test:///default, …); without it virsh uses LIBVIRT_DEFAULT_URI or
 * its own default.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError, UnavailableError } from '@vmferry/core';

const VIRSH_TIMEOUT_MS = 60_000;

export interface DefinedDomain {
  readonly domain: string;
  readonly uri: string;
}

interface VirshResult {
  readonly code: number | string | undefined;
  readonly stdout: string;
  readonly stderr: string;
}

function virsh(args: readonly string[]): Promise<VirshResult> {
  return new Promise((resolve) => {
    execFile('virsh', args, { timeout: VIRSH_TIMEOUT_MS, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (err.code ?? (err.killed ? 'timeout' : 1)) : 0, stdout, stderr });
    });
  });
}

/** Runs virsh; its failures become coded errors that say what to do. */
export async function runVirsh(args: readonly string[], uri?: string): Promise<string> {
  const where = uri ?? process.env['LIBVIRT_DEFAULT_URI'] ?? "virsh's default URI";
  const r = await virsh([...(uri ? ['-c', uri] : []), ...args]);
  if (r.code === 0) return r.stdout;
  if (r.code === 'ENOENT')
    throw new FailedPreconditionError('virsh is not installed: apt-get install libvirt-clients (and libvirt-daemon-system for a local libvirtd)');
  const msg = r.stderr.trim() || r.stdout.trim() || `exit ${String(r.code)}`;
  if (r.code === 'timeout') throw new UnavailableError(`virsh ${args[0] ?? ''} on ${where} did not answer in ${VIRSH_TIMEOUT_MS / 1000} s`);
  if (/failed to connect|no connection driver|Connection refused|No such file or directory.*sock/i.test(msg)) {
    throw new UnavailableError(`cannot reach libvirtd at ${where}: ${msg} (is libvirtd, or virtqemud, running? pick another with --libvirt-uri)`);
  }
  throw new InvalidArgumentError(`virsh ${args[0] ?? ''} on ${where} failed: ${msg}`);
}

/** Throws (as runVirsh does) unless a libvirtd answers at `uri`. */
export async function checkLibvirt(uri?: string): Promise<void> {
  await runVirsh(['uri'], uri);
}

/** Defines (or redefines) the domain in `xml`; returns its name as libvirt reports it. */
export async function defineDomain(xml: string, uri?: string): Promise<DefinedDomain> {
  const dir = await mkdtemp(join(tmpdir(), 'vmferry-virsh-'));
  try {
    const file = join(dir, 'domain.xml');
    await writeFile(file, xml, { mode: 0o600 });
    const out = await runVirsh(['define', file], uri);
    const domain = /Domain '?([^'\s]+)'? defined/.exec(out)?.[1] ?? '';
    return { domain, uri: uri ?? '' };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
