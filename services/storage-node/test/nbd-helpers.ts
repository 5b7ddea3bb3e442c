/**
 * Helpers for the NBD tests (not a test file): running the real NBD clients (qemu-img,
 * qemu-io, nbdinfo, nbdcopy, fio) and, for the malformed-input cases only, a tiny raw-socket
 * client that speaks just enough of the protocol (GO, simple replies) to send bad requests.
 */
import { execFile, spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { ByteQueue, IHAVEOPT, OPT, REQUEST_MAGIC, SIMPLE_REPLY_MAGIC } from '@vmferry/nbd';

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a client tool; never rejects (the code says how it went). */
export function tool(cmd: string, args: readonly string[]): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(cmd, args, { maxBuffer: 64 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Runs a tool and throws with its output unless it exits 0. */
export async function mustRun(cmd: string, args: readonly string[]): Promise<string> {
  const r = await tool(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

/**
 * An interactive qemu-io session over one NBD connection: commands go to its stdin one at a
 * time, so a test can act between them (no sleeps racing the client).
 */
export class QemuIoSession {
  private out = '';
  private readonly child;
  private readonly exited: Promise<number>;

  constructor(url: string) {
    this.child = spawn('qemu-io', ['-f', 'raw', url], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout.on('data', (d: Buffer) => (this.out += d.toString()));
    this.child.stderr.on('data', (d: Buffer) => (this.out += d.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code ?? 1)));
  }

  get output(): string {
    return this.out;
  }

  /** Sends one command and resolves with the output it produced, once `done` matches it. */
  async run(command: string, done: RegExp, timeoutMs = 30_000): Promise<string> {
    const from = this.out.length;
    this.child.stdin.write(`${command}\n`);
    const deadline = Date.now() + timeoutMs;
    while (!done.test(this.out.slice(from))) {
      if (Date.now() > deadline || this.child.exitCode !== null) throw new Error(`qemu-io: no ${String(done)} after '${command}':\n${this.out}`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return this.out.slice(from);
  }

  async quit(): Promise<number> {
    this.child.stdin.end('quit\n');
    return this.exited;
  }
}

export interface SimpleReply {
  readonly error: number;
  readonly data: Buffer;
}

/** The raw client: one connection in transmission after NBD_OPT_GO, simple replies only. */
export class RawNbdClient {
  private readonly queue = new ByteQueue();
  private waiter: (() => void) | undefined;
  private closedFlag = false;
  private cookie = 0n;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.queue.push(d);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.closedFlag = true;
      this.waiter?.();
    });
    socket.on('error', () => undefined);
  }

  get closed(): boolean {
    return this.closedFlag;
  }

  /** Resolves once the server has closed the connection (or after `ms`, to false). */
  async waitClosed(ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.closedFlag && Date.now() < deadline) await this.wait(deadline - Date.now());
    return this.closedFlag;
  }

  private wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.waiter = undefined;
        resolve();
      }, ms);
      this.waiter = () => {
        clearTimeout(t);
        this.waiter = undefined;
        resolve();
      };
    });
  }

  private async take(n: number): Promise<Buffer> {
    for (;;) {
      const b = this.queue.take(n);
      if (b) return Buffer.from(b);
      if (this.closedFlag) throw new Error(`connection closed while waiting for ${n} bytes`);
      await this.wait(10_000);
    }
  }

  /** Connects to HOST:PORT and opens `exportName` with NBD_OPT_GO; returns the client and the export size. */
  static async open(address: string, exportName: string): Promise<{ client: RawNbdClient; size: number; flags: number }> {
    const i = address.lastIndexOf(':');
    const socket = connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)) });
    const client = new RawNbdClient(socket);
    await client.take(18);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3, 0);
    const name = Buffer.from(exportName);
    const data = Buffer.alloc(4 + name.length + 2);
    data.writeUInt32BE(name.length, 0);
    name.copy(data, 4);
    const head = Buffer.alloc(16);
    head.writeBigUInt64BE(IHAVEOPT, 0);
    head.writeUInt32BE(OPT.GO, 8);
    head.writeUInt32BE(data.length, 12);
    socket.write(Buffer.concat([flags, head, data]));
    let size = -1;
    let tflags = 0;
    for (;;) {
      const h = await client.take(20);
      const type = h.readUInt32BE(12);
      const body = await client.take(h.readUInt32BE(16));
      if (type === 3 && body.readUInt16BE(0) === 0) {
        size = Number(body.readBigUInt64BE(2));
        tflags = body.readUInt16BE(10);
      } else if (type === 1) {
        return { client, size, flags: tflags };
      } else if (type >= 0x80000000) {
        socket.destroy();
        throw new Error(`GO refused (0x${type.toString(16)}): ${body.toString()}`);
      }
    }
  }

  /** Sends raw bytes (for malformed frames). */
  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** A request frame (header and payload). */
  frame(type: number, offset: number, length: number, payload: Buffer = Buffer.alloc(0), flags = 0): Buffer {
    const b = Buffer.alloc(28);
    b.writeUInt32BE(REQUEST_MAGIC, 0);
    b.writeUInt16BE(flags, 4);
    b.writeUInt16BE(type, 6);
    b.writeBigUInt64BE(++this.cookie, 8);
    b.writeBigUInt64BE(BigInt(offset), 16);
    b.writeUInt32BE(length, 24);
    return Buffer.concat([b, payload]);
  }

  /** One request and its simple reply (`readLength` bytes of data follow a successful READ). */
  async request(type: number, offset: number, length: number, payload?: Buffer, flags = 0): Promise<SimpleReply> {
    this.socket.write(this.frame(type, offset, length, payload, flags));
    const h = await this.take(16);
    if (h.readUInt32BE(0) !== SIMPLE_REPLY_MAGIC) throw new Error('not a simple reply');
    const error = h.readUInt32BE(4);
    const data = type === 0 && error === 0 ? await this.take(length) : Buffer.alloc(0);
    return { error, data };
  }

  destroy(): void {
    this.socket.destroy();
  }
}
