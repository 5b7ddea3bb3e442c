/**
 * A test-only client for negotiation (not a test file): greets, sends options, reads option
 * replies, and upgrades to TLS after STARTTLS (node:tls, a real TLS client). Enough of the
 * protocol to send what real clients never send (STARTTLS twice, bytes after STARTTLS).
 */
import { connect as connectTcp, type Socket } from 'node:net';
import { connect as connectTls } from 'node:tls';
import { ByteQueue, IHAVEOPT, OPT } from '../src/index.js';

export interface OptionReply {
  readonly option: number;
  readonly type: number;
  readonly data: Buffer;
}

export interface ClientTls {
  readonly ca: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  /** The name the server's certificate must carry. */
  readonly servername: string;
}

export function optionFrame(option: number, data: Buffer = Buffer.alloc(0)): Buffer {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(option, 8);
  b.writeUInt32BE(data.length, 12);
  return Buffer.concat([b, data]);
}

/** NBD_OPT_INFO / GO data: the name and no information requests. */
export function nameData(name: string): Buffer {
  const n = Buffer.from(name);
  const b = Buffer.alloc(4 + n.length + 2);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  return b;
}

export class OptionClient {
  private queue = new ByteQueue();
  private waiter: (() => void) | undefined;
  private ended = false;
  /** Why the connection ended, when it failed (a TLS alert, a reset). */
  failure: string | undefined;

  private constructor(private socket: Socket) {
    this.watch(socket);
  }

  private watch(socket: Socket): void {
    socket.on('data', (d: Buffer) => {
      this.queue.push(d);
      this.waiter?.();
    });
    socket.on('close', () => {
      this.ended = true;
      this.waiter?.();
    });
    socket.on('error', (e) => {
      this.failure ??= e.message;
    });
  }

  /** Connects and completes the greeting (fixed newstyle, no zeroes). */
  static async open(host: string, port: number): Promise<OptionClient> {
    const socket = connectTcp({ host, port });
    const c = new OptionClient(socket);
    await c.take(18);
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3, 0);
    socket.write(flags);
    return c;
  }

  static async openUnix(path: string): Promise<OptionClient> {
    const socket = connectTcp({ path });
    const c = new OptionClient(socket);
    await c.take(18);
    socket.write(Buffer.from([0, 0, 0, 3]));
    return c;
  }

  get closed(): boolean {
    return this.ended;
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
    const deadline = Date.now() + 10_000;
    for (;;) {
      const b = this.queue.take(n);
      if (b) return Buffer.from(b);
      if (this.ended) throw new Error(`connection closed while waiting for ${n} bytes${this.failure ? ` (${this.failure})` : ''}`);
      if (Date.now() > deadline) throw new Error(`no ${n} bytes in 10 s`);
      await this.wait(deadline - Date.now());
    }
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Sends one option and returns its replies up to the final one (ACK or an error). */
  async option(option: number, data?: Buffer): Promise<OptionReply[]> {
    this.socket.write(optionFrame(option, data));
    return this.replies();
  }

  async replies(): Promise<OptionReply[]> {
    const out: OptionReply[] = [];
    for (;;) {
      const h = await this.take(20);
      const reply = { option: h.readUInt32BE(8), type: h.readUInt32BE(12), data: await this.take(h.readUInt32BE(16)) };
      out.push(reply);
      if (reply.type === 1 || reply.type >= 0x80000000) return out;
    }
  }

  /** STARTTLS, then the TLS handshake; rejects with the TLS error when it fails. */
  async startTls(tls: ClientTls): Promise<OptionReply[]> {
    const replies = await this.option(OPT.STARTTLS);
    if (replies.at(-1)?.type !== 1) return replies;
    const raw = this.socket;
    raw.removeAllListeners('data');
    const secure = connectTls({ socket: raw, ca: tls.ca, servername: tls.servername, ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}) });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', () => resolve());
      secure.once('error', reject);
    });
    this.socket = secure;
    this.watch(secure);
    return replies;
  }

  /** Resolves once the server has closed the connection (false after `ms`). */
  async waitClosed(ms = 5000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!this.ended && Date.now() < deadline) await this.wait(deadline - Date.now());
    return this.ended;
  }

  /** Bytes received and not read as replies. */
  get unread(): number {
    return this.queue.length;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
