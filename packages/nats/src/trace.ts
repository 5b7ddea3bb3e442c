/** Trace context in NATS headers (the OTel NATS instrumentation does not exist for nats.js 3). */
import { context, propagation, type Context } from '@opentelemetry/api';
import { headers, type MsgHdrs } from '@nats-io/transport-node';

/** Headers carrying the active trace context (traceparent/tracestate). */
export function traceHeaders(ctx: Context = context.active()): MsgHdrs {
  const h = headers();
  propagation.inject(ctx, h, { set: (carrier, key, value) => carrier.set(key, value) });
  return h;
}

/** The context a message's headers carry (the active one when they carry none). */
export function contextFrom(h: MsgHdrs | undefined): Context {
  if (!h) return context.active();
  return propagation.extract(context.active(), h, {
    get: (carrier, key) => carrier.get(key) || undefined,
    keys: (carrier) => carrier.keys(),
  });
}
