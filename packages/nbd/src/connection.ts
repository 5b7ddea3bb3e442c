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
 */
import type { Socket } from 'node:net';
import type { BlockExports } from '@vmferry/core';
import { ByteQueue } from './byte-queue.js';
import { decodeClientFlags, decodeOption, encodeGreeting, type OptionFrame } from './handshake-codec.js';
import { Negotiation } from './negotiation.js';
import { NbdProtocolError } from './protocol-error.js';
import { CMD } from './constants.js';
import { decodeRequest } from './transmission-codec.js';
import { Transmission } from './transmission.js';

/** Reply bytes queued on the socket past which reading pauses until it drains. */
const MAX_UNSENT_BYTES = 64 * 1024 * 1024;
/** How long a closing connection waits for its last replies to be taken by the peer. */
const HANG_UP_MS = 5000;

type Phase = 'flags' | 'options' | 'transmission' | 'ending';

export class NbdConnection {
  private readonly queue = new ByteQueue();
  private phase: Phase = 'flags';
  private pumping = false;
  private negotiation: Negotiation | undefined;
  private transmission: Transmission | undefined;
  private closeExport: (() => Promise<void>) | undefined;
  /** Resolves when the socket has closed and every request in flight has finished. */
  readonly finished: Promise<void>;

  constructor(
    private readonly socket: Socket,
    private readonly exports: BlockExports,
    private readonly log: (line: string) => void,
  ) {
    this.finished = new Promise((resolve) => {
      socket.once('close', () => {
        this.phase = 'ending';
        void this.release().finally(resolve);
      });
    });
    socket.on('data', (d: Buffer) => {
      this.queue.push(d);
      void this.pump();
    });
    socket.on('error', (e) => this.log(`nbd: connection from ${this.peer}: ${e.message}`));
    socket.on('drain', () => this.resumeIfReady());
    socket.setNoDelay(true);
    socket.write(encodeGreeting());
  }

  private get peer(): string {
    return this.socket.remoteAddress !== undefined ? `${this.socket.remoteAddress}:${this.socket.remotePort ?? 0}` : 'a local socket';
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

  private send(parts: readonly Buffer[]): void {
    if (this.socket.destroyed) return;
    this.socket.cork();
    for (const p of parts) this.socket.write(p);
    this.socket.uncork();
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
          this.negotiation = new Negotiation(this.exports, flags.noZeroes);
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

  private async option(frame: OptionFrame): Promise<void> {
    this.socket.pause();
    const outcome = await (this.negotiation as Negotiation).handle(frame);
    if (this.phase === 'ending') {
      if (outcome.kind === 'transmission') await outcome.agreed.export.close().catch(() => undefined);
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
