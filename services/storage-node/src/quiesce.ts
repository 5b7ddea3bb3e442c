/*
 * VM-consistent snapshots through the hypervisor. Adapters freeze a guest before the
 * snapshot and thaw it after:
 *   exec: configured commands (e.g. `virsh domfsfreeze $VMFERRY_VM_NAME`), the VM's name and
 *         id in their environment;
 *   qmp:  QEMU Machine Protocol over a unix socket: the guest agent's fsfreeze when a guest
 *         agent socket is configured and answers, otherwise pausing and resuming the vCPUs.
 * A failed or timed-out freeze falls back to crash-consistent (the snapshot records why), or
 * fails when the policy requires VM consistency. Thaw always runs once a freeze was tried.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { FailedPreconditionError, InvalidArgumentError, UnavailableError, VmferryError } from '@vmferry/core';

export const QUIESCE_TIMEOUT_MS = 10_000;

export interface Quiescer {
  /** Resolves to a description of how the guest was frozen; rejects when it could not be. */
  freeze(vm: { id: string; name: string }): Promise<string>;
  thaw(vm: { id: string; name: string }): Promise<void>;
}

export type AdapterConfig =
  | { readonly type: 'exec'; readonly freeze: string; readonly thaw: string; readonly timeoutMs?: number }
  | { readonly type: 'qmp'; readonly socket: string; readonly guestAgent?: string; readonly timeoutMs?: number };

function run(cmd: string, vm: { id: string; name: string }, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', cmd], { timeout: timeoutMs, env: { ...process.env, VMFERRY_VM_NAME: vm.name, VMFERRY_VM_ID: vm.id } }, (err, _out, stderr) =>
      err ? reject(new UnavailableError(`'${cmd}' failed: ${stderr.trim() || err.message}`, { cause: err })) : resolve(),
    );
  });
}

export class ExecQuiescer implements Quiescer {
  constructor(private readonly c: Extract<AdapterConfig, { type: 'exec' }>) {}

  async freeze(vm: { id: string; name: string }): Promise<string> {
    await run(this.c.freeze, vm, this.c.timeoutMs ?? QUIESCE_TIMEOUT_MS);
    return `exec: ${this.c.freeze}`;
  }

  thaw(vm: { id: string; name: string }): Promise<void> {
    return run(this.c.thaw, vm, this.c.timeoutMs ?? QUIESCE_TIMEOUT_MS);
  }
}

/** One QMP or guest-agent exchange per call: connect, (negotiate), execute, close. */
export async function qmpCommand(socketPath: string, command: string, args: object | undefined, timeoutMs: number, agent = false): Promise<unknown> {
  const sock: Socket = connect(socketPath);
  try {
    return await new Promise<unknown>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new VmferryError('deadline-exceeded', `${agent ? 'guest agent' : 'QMP'} '${command}' timed out after ${timeoutMs} ms`)),
        timeoutMs,
      );
      let buffer = '';
      let negotiated = agent;
      const send = (msg: object): void => void sock.write(`${JSON.stringify(msg)}\n`);
      sock.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      sock.on('connect', () => {
        if (agent) send({ execute: command, ...(args ? { arguments: args } : {}) });
      });
      sock.on('data', (d: Buffer) => {
        buffer += d.toString();
        let nl;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line) continue;
          const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
          if (msg.QMP) {
            send({ execute: 'qmp_capabilities' });
          } else if (!negotiated && 'return' in msg) {
            negotiated = true;
            send({ execute: command, ...(args ? { arguments: args } : {}) });
          } else if (msg.error) {
            clearTimeout(timer);
            reject(new UnavailableError(`${command}: ${msg.error.desc ?? 'error'}`));
          } else if ('return' in msg) {
            clearTimeout(timer);
            resolve(msg.return);
          }
        }
      });
    });
  } finally {
    sock.destroy();
  }
}

export class QmpQuiescer implements Quiescer {
  private mode: 'agent' | 'pause' | undefined;

  constructor(private readonly c: Extract<AdapterConfig, { type: 'qmp' }>) {}

  private get timeout(): number {
    return this.c.timeoutMs ?? QUIESCE_TIMEOUT_MS;
  }

  async freeze(): Promise<string> {
    if (this.c.guestAgent) {
      try {
        await qmpCommand(this.c.guestAgent, 'guest-ping', undefined, Math.min(2000, this.timeout), true);
        await qmpCommand(this.c.guestAgent, 'guest-fsfreeze-freeze', undefined, this.timeout, true);
        this.mode = 'agent';
        return 'qmp: guest agent fsfreeze';
      } catch {
        // No answering guest agent: pause the vCPUs instead.
      }
    }
    await qmpCommand(this.c.socket, 'stop', undefined, this.timeout);
    this.mode = 'pause';
    return 'qmp: vCPUs paused';
  }

  async thaw(): Promise<void> {
    if (this.mode === 'agent' && this.c.guestAgent) await qmpCommand(this.c.guestAgent, 'guest-fsfreeze-thaw', undefined, this.timeout, true);
    else await qmpCommand(this.c.socket, 'cont', undefined, this.timeout);
    this.mode = undefined;
  }
}

const VM_NAME_PLACEHOLDER = /\{\{\s*name\s*\}\}/g;
const NAMES_VM = /\{\{\s*name\s*\}\}/;

/**
 * Adapters by VM name ('*' for any VM), from a JSON file. A qmp adapter's socket and
 * guestAgent paths may hold {{name}} (as a hypervisor config template's `-qmp
 * unix:/run/vmferry/{{name}}.qmp,…` does): each VM then gets its own adapter on its own sockets.
 */
export async function loadQuiescers(file: string): Promise<(vmName: string) => Quiescer | undefined> {
  const raw = JSON.parse(await readFile(file, 'utf8')) as Record<string, AdapterConfig>;
  const adapters = new Map<string, (vmName: string) => Quiescer>();
  for (const [name, c] of Object.entries(raw)) {
    if (c.type === 'exec' && c.freeze && c.thaw) {
      const q = new ExecQuiescer(c);
      adapters.set(name, () => q);
    } else if (c.type === 'qmp' && c.socket) {
      adapters.set(name, qmpAdapters(c));
    } else throw new InvalidArgumentError(`hypervisor adapter for '${name}' in ${file}: use {"type":"exec","freeze":…,"thaw":…} or {"type":"qmp","socket":…}`);
  }
  return (vmName) => (adapters.get(vmName) ?? adapters.get('*'))?.(vmName);
}

/** One QmpQuiescer, or one per VM (kept, so a freeze and its thaw meet) when the paths name the VM. */
function qmpAdapters(c: Extract<AdapterConfig, { type: 'qmp' }>): (vmName: string) => Quiescer {
  const perVm = NAMES_VM.test(c.socket) || NAMES_VM.test(c.guestAgent ?? '');
  if (!perVm) {
    const q = new QmpQuiescer(c);
    return () => q;
  }
  const byVm = new Map<string, QmpQuiescer>();
  return (vmName) => {
    let q = byVm.get(vmName);
    if (!q) {
      const fill = (path: string): string => path.replace(VM_NAME_PLACEHOLDER, vmName);
      q = new QmpQuiescer({ ...c, socket: fill(c.socket), ...(c.guestAgent === undefined ? {} : { guestAgent: fill(c.guestAgent) }) });
      byVm.set(vmName, q);
    }
    return q;
  };
}

export interface ConsistentResult<T> {
  readonly value: T;
  readonly consistency: 'crash' | 'vm';
  readonly note?: string;
}

/**
 * Runs `take` with the guest frozen when asked and possible. Falls back to crash-consistent
 * (with the reason) unless `require` is set; always thaws once a freeze was attempted.
 */
export async function withQuiesce<T>(
  quiescer: Quiescer | undefined,
  vm: { id: string; name: string },
  wanted: 'crash' | 'vm',
  require: boolean,
  take: (consistency: 'crash' | 'vm', note?: string) => Promise<T>,
): Promise<ConsistentResult<T>> {
  if (wanted === 'crash') return { value: await take('crash'), consistency: 'crash' };
  let note: string | undefined;
  let frozen = false;
  if (!quiescer) note = 'no hypervisor adapter configured for this VM';
  else {
    try {
      await quiescer.freeze(vm);
      frozen = true;
    } catch (e) {
      note = `quiesce failed: ${(e as Error).message}`;
      await quiescer.thaw(vm).catch(() => undefined);
    }
  }
  if (!frozen && require) {
    const message = `VM-consistent snapshot of '${vm.name}' required, but ${note ?? 'quiesce failed'}`;
    // No adapter is configuration, final; a freeze that failed (a guest agent not answering) may work next time.
    throw quiescer ? new UnavailableError(message) : new FailedPreconditionError(message);
  }
  try {
    const value = await take(frozen ? 'vm' : 'crash', note);
    return { value, consistency: frozen ? 'vm' : 'crash', ...(note ? { note } : {}) };
  } finally {
    if (frozen && quiescer) await quiescer.thaw(vm);
  }
}
