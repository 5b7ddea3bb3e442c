/**
 * qemu-nbd as the peer: one export of a raw file or a qcow2 overlay, on a loopback TCP port.
 * -t (persistent) and --shared=16 so fio can connect again and again; --cache and --aio are
 * left at qemu-nbd's defaults (writeback: the host page cache, FLUSH = fdatasync; aio=threads).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { freePort } from '@vmferry/testkit';
import { probeRead } from './nbd-probe.js';

export interface QemuNbd {
  readonly uri: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export async function startQemuNbd(file: string, format: 'raw' | 'qcow2', exportName: string): Promise<QemuNbd> {
  const port = await freePort();
  const child = spawn('qemu-nbd', ['-f', format, '-x', exportName, '-b', '127.0.0.1', '-p', String(port), '-t', '--shared=16', file], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit');
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`qemu-nbd exited with ${child.exitCode}: ${stderr}`);
    try {
      await probeRead('127.0.0.1', port, exportName);
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`qemu-nbd did not answer in 10 s: ${String(e)}\n${stderr}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    uri: `nbd://127.0.0.1:${port}/${exportName}`,
    child,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
