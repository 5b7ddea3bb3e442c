/*
 * The stream and call helpers every gRPC user needs, written once: unary calls as promises
 * with errors mapped to core errors, writes that wait for HTTP/2 flow control, and the one
 * way to fail a server stream so the client receives the status.
 */
import { once } from 'node:events';
import type { ServiceError } from '@grpc/grpc-js';
import { fromServiceError, toServiceError } from './errors.js';

type Callback<Res> = (err: ServiceError | null, res: Res) => void;

/** Calls a callback-style unary method and resolves to its response; failures become core errors. */
export function unaryCall<Req, Res>(fn: (req: Req, cb: Callback<Res>) => unknown, req: Req, peer?: string): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(fromServiceError(err, peer)) : resolve(res))));
}

/** A writable gRPC stream, server or client side. */
interface WritableCall<T> {
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
  await (failed ? Promise.race([drained, failed]) : drained);
}

/**
 * Fails a server stream with `e` mapped to a status. emit('error'), not destroy(err):
 * grpc-js sends the status from the error event; a destroyed stream never sends one and the
 * client waits forever.
 */
export function failStream(call: { emit(event: 'error', err: unknown): boolean }, e: unknown): void {
  call.emit('error', toServiceError(e));
}
