/*
 * One client connection: greeting, client flags, option haggling, transmission, end.
 *
 * Bytes are parsed by one pump at a time, in order. During negotiation each option is
 * answered before the next is parsed (the client must wait anyway). In transmission the
 * pump admits requests until MAX_IN_FLIGHT are outstanding, then pauses the socket until
 * one settles, so a client cannot make the server buffer without bound; replies that the
 * socket cannot take yet also pause reading until it drains.
 *
 * Failure isolation: a protocol violation or socket error ends only this connection
 * (destroy), after which requests in flight still finish against the backend but their
 * replies are dropped; the export is closed once they have.
 *
 * TLS: after NBD_OPT_STARTTLS is acknowledged the plain socket is handed to node:tls and
 * every later byte goes through the TLS socket. The client must wait for the ACK before it
 * starts the handshake, so nothing may be buffered (parsed or not) at that point: bytes
 * there would have been sent in plaintext after STARTTLS, a protocol violation, and they
 * drop the connection rather than being taken as negotiation.
 */
import type { Socket } from 'node:net';
import type { BlockExports } from '@vmferry/core';
import { upgradeToTls, type NbdTls } from './tls.js';
import { ByteQueue } from './byte-queue.js';
import { decodeClientFlags, decodeOption, encodeGreeting, type OptionFrame } from './handshake-codec.js';
import { Negotiation, type TlsState } from './negotiation.js';
import { NbdProtocolError } from './protocol-error.js';
import { CMD } from './constants.js';
import { decodeRequest } from './transmission-codec.js';
import { Transmission } from './transmission.js';

/** Reply bytes queued on the socket past which reading pauses until it drains. */
const MAX_UNSENT_BYTES = 64 * 1024 * 1024;
/** How long a closing connection waits for its last replies to be taken by the peer. */
const HANG_UP_MS = 5000;

type Phase = 'flags' | 'options' | 'tls-handshake' | 'transmission' | 'ending';

export class NbdConnection {
  private readonly queue = new ByteQueue();
  private phase: Phase = 'flags';
  private pumping = false;
  private negotiation: Negotiation | undefined;
  private transmission: Transmission | undefined;
  private closeExport: (() => Promise<void>) | undefined;
  private noZeroes = false;
  /** The plain socket, then (after STARTTLS) the TLS socket over it. */
  private socket: Socket;
  private readonly peer: string;
  private closed = false;
  private onClosed: () => void = () => undefined;
  /** Resolves when the socket has closed and every request in flight has finished. */
  readonly finished: Promise<void>;

  /** With `tls`, the connection is in FORCEDTLS mode; without, NOTLS. */
  constructor(
    socket: Socket,
    private readonly exports: BlockExports,
    private readonly log: (line: string) => void,
    private readonly tls?: NbdTls,
  ) {
    this.socket = socket;
    this.peer = socket.remoteAddress !== undefined ? `${socket.remoteAddress}:${socket.remotePort ?? 0}` : 'a local socket';
    this.finished = new Promise((resolve) => {
      this.onClosed = () => {
        if (this.closed) return;
        this.closed = true;
        this.phase = 'ending';
        void this.release().finally(resolve);
      };
    });
    this.attach(socket);
    socket.setNoDelay(true);
    socket.write(encodeGreeting());
  }

  private readonly onData = (d: Buffer): void => {
    this.queue.push(d);
    void this.pump();
  };
  private readonly onError = (e: Error): void => this.log(`nbd: connection from ${this.peer}: ${e.message}`);
  private readonly onDrain = (): void => this.resumeIfReady();
  private readonly onClose = (): void => this.onClosed();

  private attach(socket: Socket): void {
    socket.on('data', this.onData);
    socket.on('error', this.onError);
    socket.on('drain', this.onDrain);
    socket.once('close', this.onClose);
  }

  /** Server shutdown: stop reading, let requests in flight answer, then close. */
  async shutdown(): Promise<void> {
    if (this.phase !== 'ending') {
      this.phase = 'ending';
      this.socket.pause();
      await this.transmission?.drain();
      this.hangUp();
    }
    await this.finished;
  }

  /**
   * Ends the connection once what was sent is flushed. A paused socket never sees the
   * peer's FIN, so 'close' would never come: destroy after our end is written (or after
   * HANG_UP_MS if the peer stops reading).
   */
  private hangUp(): void {
    this.phase = 'ending';
    if (this.socket.destroyed) return;
    setTimeout(() => this.socket.destroy(), HANG_UP_MS).unref();
    this.socket.end(() => this.socket.destroy());
  }

  private async release(): Promise<void> {
    await this.transmission?.drain();
    await this.closeExport?.().catch(() => undefined);
    this.closeExport = undefined;
  }

  private corked = false;

  /**
   * Writes one whole reply. The socket stays corked until the event loop's check phase
   * (setImmediate), so the replies of requests that finish in one loop iteration leave in one
   * write (one syscall, fewer packets). Uncorking at the end of the tick gathered only the
   * replies of one socket read's requests: under 4 KiB QD16 reads, a client sends a few
   * requests per read and writev was ~16% of the node's main thread.
   */
  private send(parts: readonly Buffer[]): void {
    if (this.socket.destroyed) return;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    for (const p of parts) this.socket.write(p);
  }

  private resumeIfReady(): void {
    if (this.phase === 'ending' || this.socket.destroyed) return;
    if (this.transmission?.saturated === true || this.socket.writableLength > MAX_UNSENT_BYTES) return;
    this.socket.resume();
    void this.pump();
  }

  /** Hard disconnect of this connection only. */
  private abort(reason: string): void {
    this.log(`nbd: dropping connection from ${this.peer}: ${reason}`);
    this.phase = 'ending';
    this.socket.destroy();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      for (;;) {
        if (this.phase === 'flags') {
          const flags = decodeClientFlags(this.queue);
          if (!flags) break;
          this.noZeroes = flags.noZeroes;
          this.negotiation = new Negotiation(this.exports, flags.noZeroes, this.tls ? 'required' : 'none');
          this.phase = 'options';
        } else if (this.phase === 'options') {
          const frame = decodeOption(this.queue);
          if (!frame) break;
          await this.option(frame);
        } else if (this.phase === 'transmission') {
          if (!this.admit()) break;
        } else {
          break;
        }
      }
    } catch (e) {
      this.abort(e instanceof NbdProtocolError ? e.message : `internal error: ${e instanceof Error ? e.message : String(e)}`);
    } finally {
      this.pumping = false;
    }
  }

  /** Admits the next complete request; false when none can be admitted now. */
  private admit(): boolean {
    const t = this.transmission as Transmission;
    if (t.saturated || this.socket.writableLength > MAX_UNSENT_BYTES) {
      this.socket.pause();
      return false;
    }
    const req = decodeRequest(this.queue);
    if (!req) return false;
    if (req.type === CMD.DISC) {
      // Soft disconnect: answer what is outstanding, then close.
      void this.shutdown();
      return false;
    }
    t.accept(req);
    return true;
  }

  /**
   * Sends STARTTLS's ACK on the plain socket, then upgrades once it has been written (a
   * write still queued in the plain socket would otherwise be lost under TLS). Reading
   * stays paused until the TLS socket takes over.
   */
  private startTls(replies: readonly Buffer[]): void {
    const raw = this.socket;
    if (this.queue.length > 0 || raw.readableLength > 0) {
      this.abort('bytes sent after NBD_OPT_STARTTLS before the TLS handshake');
      return;
    }
    this.phase = 'tls-handshake';
    raw.off('data', this.onData);
    raw.off('drain', this.onDrain);
    raw.write(Buffer.concat(replies), (err) => {
      if (err || this.phase !== 'tls-handshake') return;
      void this.upgrade(raw);
    });
  }

  private async upgrade(raw: Socket): Promise<void> {
    let secure: Socket;
    let state: TlsState = 'secured';
    try {
      const tls = await upgradeToTls(raw, this.tls as NbdTls);
      const refusal = this.tls?.authorize?.(tls.getPeerCertificate());
      if (refusal !== undefined) {
        this.log(`nbd: refusing the client certificate of ${this.peer}: ${refusal}`);
        state = { refused: refusal };
      }
      secure = tls;
    } catch (e) {
      this.abort(e instanceof Error ? e.message : String(e));
      return;
    }
    if (this.phase !== 'tls-handshake') {
      secure.destroy();
      return;
    }
    this.socket = secure;
    this.attach(secure);
    // Negotiation starts again: nothing chosen in plaintext survives the upgrade.
    this.negotiation = new Negotiation(this.exports, this.noZeroes, state);
    this.phase = 'options';
    this.socket.resume();
    void this.pump();
  }

  private async option(frame: OptionFrame): Promise<void> {
    this.socket.pause();
    const outcome = await (this.negotiation as Negotiation).handle(frame);
    if (this.phase === 'ending') {
      if (outcome.kind === 'transmission') await outcome.agreed.export.close().catch(() => undefined);
      return;
    }
    if (outcome.kind === 'starttls') {
      this.startTls(outcome.replies);
      return;
    }
    this.send(outcome.replies);
    if (outcome.kind === 'close') {
      this.hangUp();
      return;
    }
    if (outcome.kind === 'transmission') {
      const exp = outcome.agreed.export;
      this.closeExport = () => exp.close();
      this.transmission = new Transmission(outcome.agreed, {
        send: (parts) => this.send(parts),
        settled: () => this.resumeIfReady(),
        exportGone: () => {
          this.log(`nbd: export '${exp.name}' is gone; closing the connection from ${this.peer}`);
          void this.shutdown();
        },
      });
      this.phase = 'transmission';
    }
    this.socket.resume();
  }
}
