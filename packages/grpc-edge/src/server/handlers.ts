/*
 * Server handlers written once: a unary or streaming handler from an async function, whose
 * throws become statuses (toServiceError), and a backpressured sender for server streams.
 */
import type { sendUnaryData } from '@grpc/grpc-js';
import { toServiceError } from '../errors.js';
import { writeWithBackpressure, type WritableCall } from '../streams.js';

/**
 * Fails a server stream with `e` mapped to a status. emit('error'), not destroy(err):
 * grpc-js sends the status from the error event; a destroyed stream never sends one and the
 * client waits forever.
 */
export function failStream(call: { emit(event: 'error', err: unknown): boolean }, e: unknown): void {
  call.emit('error', toServiceError(e));
}

/**
 * A unary or client-streaming handler from an async function of the call: its result is the
 * response, anything it throws becomes the status (toServiceError).
 */
export function serveUnary<Call, Res>(fn: (call: Call) => Promise<Res> | Res): (call: Call, callback: sendUnaryData<Res>) => void {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call))
      .then(
        (res) => callback(null, res),
        (e: unknown) => callback(toServiceError(e)),
      );
  };
}

/** A server stream: writable with flow control, and cancelled when the client goes away. */
interface ServerStream<T> extends WritableCall<T> {
  readonly cancelled: boolean;
  end(): void;
  emit(event: 'error', err: unknown): boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * A server-streaming handler from an async function that sends the stream (usually with
 * sendAll); anything it throws fails the stream with that status (failStream).
 */
export function serveStream<Call extends ServerStream<never>>(fn: (call: Call) => Promise<void>): (call: Call) => void {
  return (call) => {
    fn(call).catch((e: unknown) => failStream(call, e));
  };
}

/**
 * Writes every message of `messages` with backpressure, then ends the stream. Stops pulling
 * once the client cancels (the source is closed, so a generator releases what it holds), and
 * pulls the next message only after the previous one was accepted: a source never runs ahead
 * of the network by more than the stream's buffer.
 */
export async function sendAll<T>(call: ServerStream<T>, messages: AsyncIterable<T>): Promise<void> {
  // A cancel destroys the stream: it never drains, so a wait for 'drain' alone would hold
  // the source (and what it holds, a read lock) forever. 'close' ends that wait.
  let closed = false;
  const closing = new Promise<void>((resolve) =>
    call.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  const it = messages[Symbol.asyncIterator]();
  let done = false;
  try {
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- `closed` is set by the 'close' listener while this loop awaits
    while (!call.cancelled && !closed) {
      const next = await it.next();
      if (next.done === true) {
        done = true;
        call.end();
        return;
      }
      await writeWithBackpressure(call, next.value, closing);
    }
  } finally {
    if (!done) await it.return?.();
  }
}
