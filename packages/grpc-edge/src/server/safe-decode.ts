/*
 * INVALID_ARGUMENT naming the field, instead of grpc-js's INTERNAL "Error deserializing
 * request", for a 64-bit integer the generated `number` fields cannot hold (≥ 2^53).
 *
 * grpc-js answers any deserializer exception with INTERNAL, so the deserializer cannot
 * refuse the message itself: it returns a marker carrying the error, and the wrapped
 * handlers turn the marker into the answer (unary and server-streaming calls: before the
 * handler runs; client streams: when the handler's read loop reaches that message).
 */
import type * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '@vmferry/core';
import { findUnsafeInt64, requestTypeOf } from '@vmferry/proto';
import { toServiceError } from '../errors.js';
import { failStream } from './handlers.js';

const BAD = Symbol('undecodable request');
interface BadRequest {
  readonly [BAD]: InvalidArgumentError;
}

function badOf(msg: unknown): InvalidArgumentError | undefined {
  return typeof msg === 'object' && msg !== null && BAD in msg ? (msg as BadRequest)[BAD] : undefined;
}

type Method = grpc.MethodDefinition<unknown, unknown>;
type AnyCall = { request?: unknown; emit(event: string, arg: unknown): boolean } & Partial<AsyncIterable<unknown>>;
type AnyHandler = (call: AnyCall, callback?: (err: Partial<grpc.ServiceError> | null) => void) => void;

function guardDeserialize(serviceName: string, name: string, def: Method): Method {
  const type = requestTypeOf(serviceName, name);
  if (!type) return def;
  return {
    ...def,
    requestDeserialize: (bytes: Buffer): unknown => {
      try {
        return def.requestDeserialize(bytes);
      } catch (e) {
        const hit = findUnsafeInt64(type, bytes);
        if (!hit) throw e;
        const err = new InvalidArgumentError(`field ${hit.field}: ${hit.value} is too large (vmferry takes integers below 2^53)`);
        return { [BAD]: err } satisfies BadRequest;
      }
    },
  };
}

function guardHandler(def: Method, handler: AnyHandler): AnyHandler {
  if (!def.requestStream) {
    return (call, callback) => {
      const bad = badOf(call.request);
      if (!bad) handler(call, callback);
      else if (callback) callback(toServiceError(bad));
      else failStream(call, bad);
    };
  }
  return (call, callback) => {
    const source = call[Symbol.asyncIterator]?.bind(call);
    if (source) {
      call[Symbol.asyncIterator] = async function* checked(): AsyncGenerator {
        for await (const msg of { [Symbol.asyncIterator]: source }) {
          const bad = badOf(msg);
          if (bad) throw bad;
          yield msg;
        }
      };
    }
    handler(call, callback);
  };
}

/**
 * `definition` and `handlers` of the proto service `serviceName` (e.g. 'vmferry.v1.StorageNode')
 * with the 64-bit integer check wired in; pass both to `server.addService`.
 */
export function withSafeDecode<D extends grpc.ServiceDefinition, H extends grpc.UntypedServiceImplementation>(
  serviceName: string,
  definition: D,
  handlers: H,
): { definition: D; handlers: H } {
  const defs: Record<string, Method> = {};
  const hs: Record<string, AnyHandler> = {};
  for (const [name, def] of Object.entries(definition) as [string, Method][]) {
    defs[name] = guardDeserialize(serviceName, name, def);
    const h = handlers[name] as unknown as AnyHandler | undefined;
    if (h) hs[name] = guardHandler(def, h);
  }
  return { definition: defs as unknown as D, handlers: hs as unknown as H };
}
