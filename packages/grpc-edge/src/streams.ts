/*
 * Flow control shared by both sides of the edge: a write that waits for HTTP/2 to drain.
 * Client calls live in client/calls.ts, server handlers in server/handlers.ts.
 */
import { once } from 'node:events';

/** A writable gRPC stream, server or client side. */
export interface WritableCall<T> {
  write(msg: T): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/**
 * Writes `msg` and, when the stream's buffer is full, waits for 'drain'. `failed` (a call's
 * result promise) ends the wait early: a stream the peer closed never drains.
 */
export async function writeWithBackpressure<T>(call: WritableCall<T>, msg: T, failed?: Promise<unknown>): Promise<void> {
  if (call.write(msg)) return;
  const drained = once(call as unknown as NodeJS.EventEmitter, 'drain');
  // Once `failed` has won the race, an 'error' the stream emits later rejects `drained`:
  // handled here, so it is not an unhandled rejection.
  drained.catch(() => undefined);
  await (failed ? Promise.race([drained, failed]) : drained);
}
