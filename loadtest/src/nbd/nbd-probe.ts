/**
 * A minimal NBD client for "is this export there and readable": fixed newstyle handshake,
 * NBD_OPT_GO for the export, one NBD_CMD_READ (simple reply; no structured replies asked
 * for), NBD_CMD_DISC. In-process, so 100 probes at once cost sockets, not 100 processes.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';

const NBDMAGIC = Buffer.from('NBDMAGIC');
const IHAVEOPT = Buffer.from('IHAVEOPT');
const OPT_REPLY_MAGIC = 0x3e889045565a9n;
const NBD_OPT_GO = 7;
const NBD_REP_ACK = 1;
const NBD_REQUEST_MAGIC = 0x25609513;
const NBD_SIMPLE_REPLY_MAGIC = 0x67446698;
const NBD_CMD_READ = 0;
const NBD_CMD_DISC = 2;

/** Reads exactly n bytes from the socket, buffering what arrives early. */
class Reader {
  private buf = Buffer.alloc(0);
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | undefined;
  private failed: Error | undefined;

  constructor(sock: Socket) {
    sock.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
      this.pump();
    });
    const fail = (e: Error): void => {
      this.failed = e;
      this.want?.reject(e);
      this.want = undefined;
    };
    sock.on('error', fail);
    sock.on('close', () => fail(new Error('connection closed')));
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.want = { n, resolve, reject };
      this.pump();
      if (this.want && this.failed) reject(this.failed);
    });
  }

  private pump(): void {
    if (!this.want || this.buf.length < this.want.n) return;
    const out = this.buf.subarray(0, this.want.n);
    this.buf = this.buf.subarray(this.want.n);
    const w = this.want;
    this.want = undefined;
    w.resolve(out);
  }
}

/** Connects, opens `exportName` and reads `length` bytes at `offset`; resolves with the bytes or rejects. */
export async function probeRead(host: string, port: number, exportName: string, offset = 0, length = 4096, timeoutMs = 10_000): Promise<Buffer> {
  const sock = connect(port, host);
  const timer = setTimeout(() => sock.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
  try {
    const r = new Reader(sock);
    const greeting = await r.read(18);
    if (!greeting.subarray(0, 8).equals(NBDMAGIC) || !greeting.subarray(8, 16).equals(IHAVEOPT)) throw new Error('not a newstyle NBD server');
    const flags = Buffer.alloc(4);
    flags.writeUInt32BE(3); // FIXED_NEWSTYLE | NO_ZEROES
    const name = Buffer.from(exportName);
    const opt = Buffer.alloc(16 + 4 + name.length + 2);
    IHAVEOPT.copy(opt, 0);
    opt.writeUInt32BE(NBD_OPT_GO, 8);
    opt.writeUInt32BE(4 + name.length + 2, 12);
    opt.writeUInt32BE(name.length, 16);
    name.copy(opt, 20);
    opt.writeUInt16BE(0, 20 + name.length);
    sock.write(Buffer.concat([flags, opt]));
    for (;;) {
      const h = await r.read(20);
      if (h.readBigUInt64BE(0) !== OPT_REPLY_MAGIC) throw new Error('bad option reply magic');
      const type = h.readUInt32BE(12);
      const data = await r.read(h.readUInt32BE(16));
      if (type === NBD_REP_ACK) break;
      if (type & 0x80000000) throw new Error(`export '${exportName}' refused (${type.toString(16)}): ${data.toString()}`);
    }
    const req = Buffer.alloc(28);
    req.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
    req.writeUInt16BE(0, 4);
    req.writeUInt16BE(NBD_CMD_READ, 6);
    req.writeBigUInt64BE(1n, 8);
    req.writeBigUInt64BE(BigInt(offset), 16);
    req.writeUInt32BE(length, 24);
    sock.write(req);
    const reply = await r.read(16);
    if (reply.readUInt32BE(0) !== NBD_SIMPLE_REPLY_MAGIC) throw new Error('bad reply magic');
    const errno = reply.readUInt32BE(4);
    if (errno !== 0) throw new Error(`read failed with NBD error ${errno}`);
    const bytes = Buffer.from(await r.read(length));
    const disc = Buffer.alloc(28);
    disc.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
    disc.writeUInt16BE(NBD_CMD_DISC, 6);
    disc.writeBigUInt64BE(2n, 8);
    const closed = once(sock, 'close');
    sock.end(disc);
    await closed;
    return bytes;
  } finally {
    clearTimeout(timer);
    sock.destroy();
  }
}
