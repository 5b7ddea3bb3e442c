/*
 * Client calls written once: unary calls as promises, server-stream reads and client-stream
 * uploads, every failure a core error (fromServiceError) so callers branch on `code`.
 */
import type { ClientReadableStream, ClientWritableStream, ServiceError } from '@grpc/grpc-js';
import { asCoreError, fromServiceError } from '../errors.js';
import { writeWithBackpressure } from '../streams.js';

type Callback<Res> = (err: ServiceError | null, res: Res) => void;

/** Calls a callback-style unary method and resolves to its response; failures become core errors. */
export function unaryCall<Req, Res>(fn: (req: Req, cb: Callback<Res>) => unknown, req: Req, peer?: string): Promise<Res> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(fromServiceError(err, peer)) : resolve(res))));
}

/**
 * Yields a server stream's messages; a failure is thrown as a core error. The call is
 * cancelled when the reader stops early (break, throw) or `signal` aborts, so the server
 * stops sending what nobody reads.
 */
export async function* readStream<T>(call: ClientReadableStream<T>, signal?: AbortSignal, peer?: string): AsyncGenerator<T> {
  const abort = (): void => call.cancel();
  signal?.addEventListener('abort', abort, { once: true });
  try {
    for await (const msg of call as AsyncIterable<T>) yield msg;
  } catch (e) {
    throw asCoreError(e, peer);
  } finally {
    signal?.removeEventListener('abort', abort);
    call.cancel();
  }
}

/** A client-streaming call: backpressured writes, then the server's one answer. */
export interface Upload<Req, Res> {
  /** Writes `msg`, waiting for flow control; throws the call's failure (a core error) if it ended. */
  write(msg: Req): Promise<void>;
  /** Ends the stream and resolves to the answer; failures are core errors. */
  end(): Promise<Res>;
  /** Abandons the call. */
  cancel(): void;
}

/** Opens a client-streaming call (`open` passes the callback to the generated method). */
export function upload<Req, Res>(open: (cb: Callback<Res>) => ClientWritableStream<Req>, peer?: string): Upload<Req, Res> {
  let settle: Callback<Res> = () => undefined;
  const result = new Promise<Res>((resolve, reject) => {
    settle = (err, res) => (err ? reject(fromServiceError(err, peer)) : resolve(res));
  });
  // Observed through write() and end(); a failure nobody awaits must not crash the process.
  result.catch(() => undefined);
  const call = open((err, res) => settle(err, res));
  return {
    write: async (msg) => {
      await writeWithBackpressure(call, msg, result);
    },
    end: () => {
      call.end();
      return result;
    },
    cancel: () => call.cancel(),
  };
}
