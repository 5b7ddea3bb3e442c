/*
 * Publishing jobs and events, and consuming jobs: durable pull consumers with explicit ack,
 * redelivery with backoff (nak with a delay) for transient failures, and a dead-letter event
 * after MAX_DELIVER tries or at once for a final one (see retry.ts).
 */
import { AckPolicy, type JsMsg } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { metrics, type Attributes, type Context } from '@opentelemetry/api';
import type { Coordination } from './coordination.js';
import { eventSubject, JOBS_STREAM } from './names.js';
import { classifyFailure } from './retry.js';
import { contextFrom, traceHeaders } from './trace.js';
import type { EventKind, VmferryEvent } from './types.js';

export const MAX_DELIVER = 5;
export const ACK_WAIT_MS = 120_000;
/** Redelivery delays after the 1st, 2nd, … failure. */
export const BACKOFF_MS = [1000, 5000, 15_000, 60_000];

const encoder = new TextEncoder();

/*
 * Job metrics, per kind and site (from the subject: vmferry.jobs.KIND.SITE), in whichever
 * process publishes or works (no-ops without a started SDK). Kinds and sites are few.
 */
let meters: ReturnType<typeof createJobMeters> | undefined;
// Created at first use, not at import: before the SDK starts, the API hands out no-op meters
// for good (it has no proxy meter provider), and this module is imported before telemetry starts.
const jobMeters = (): ReturnType<typeof createJobMeters> => (meters ??= createJobMeters());
function createJobMeters() {
  const meter = metrics.getMeter('vmferry-jobs');
  return {
    published: meter.createCounter('vmferry.jobs.published', { description: 'Jobs published (duplicate="true": NATS de-duplicated it)' }),
    done: meter.createCounter('vmferry.jobs.done', { description: 'Jobs a worker finished' }),
    failed: meter.createCounter('vmferry.jobs.failed', { description: 'Job attempts that failed (retried or dead-lettered)' }),
    dead: meter.createCounter('vmferry.jobs.dead_lettered', { description: 'Jobs given up on (a final failure or the last try)' }),
    running: meter.createUpDownCounter('vmferry.jobs.running', { description: 'Jobs being worked on now' }),
  };
}

function jobAttrs(subject: string): Attributes {
  const [, , kind = 'unknown', site = 'unknown'] = subject.split('.');
  return { kind, site };
}

/** Publishes a job; `msgId` makes a duplicate (same id within the window) a no-op. */
export async function publishJob(c: Coordination, subject: string, job: object, msgId: string, ctx?: Context): Promise<{ duplicate: boolean }> {
  const ack = await c.js.publish(subject, encoder.encode(JSON.stringify(job)), { msgID: msgId, headers: traceHeaders(ctx) });
  jobMeters().published.add(1, { ...jobAttrs(subject), duplicate: String(ack.duplicate) });
  return { duplicate: ack.duplicate };
}

/** Publishes an event; `msgId` makes a duplicate (two schedulers reporting one thing) a no-op. */
export async function publishEvent(c: Coordination, kind: EventKind, fields: Omit<VmferryEvent, 'kind' | 'atMs'>, msgId?: string): Promise<void> {
  const event: VmferryEvent = { kind, atMs: Date.now(), ...fields };
  await c.js.publish(eventSubject(kind, c.site), encoder.encode(JSON.stringify(event)), msgId === undefined ? {} : { msgID: msgId });
}

/** How a worker retries: the defaults are the production values; tests shorten them. */
export interface WorkerOptions {
  /** Redelivery delays after the 1st, 2nd, … failure (the last repeats); default BACKOFF_MS. */
  readonly backoffMs?: readonly number[];
  /** Deliveries before a transient failure is dead-lettered; default MAX_DELIVER. */
  readonly maxDeliver?: number;
  /** How long a delivery may go unacknowledged before the server redelivers it; default ACK_WAIT_MS. */
  readonly ackWaitMs?: number;
}

/** The redelivery delay after the `tries`-th failed delivery. */
export function backoffAfter(tries: number, backoffMs: readonly number[] = BACKOFF_MS): number {
  return backoffMs[Math.min(Math.max(tries, 1), backoffMs.length) - 1] ?? 0;
}

export interface WorkerHandle {
  stop(): Promise<void>;
  /** Resolves when the consume loop has ended. */
  readonly done: Promise<void>;
}

/**
 * Consumes `subject` with the durable consumer `durable`, calling `handle` for each job with
 * its trace context, at most `concurrency` at a time. Success acks; a transient failure naks
 * with backoff; a final failure (bad input, DATA_LOSS, …) or the MAX_DELIVER-th transient one
 * publishes job.dead-lettered (with the error's code and message) and terminates the message.
 * Which failure is final is classifyFailure's call: a coded error's `retryable` first.
 * Rejects when the consumer cannot be created (NATS unreachable, JetStream missing).
 */
export async function runWorker<T>(
  c: Coordination,
  durable: string,
  subject: string,
  handle: (job: T, ctx: Context, msg: JsMsg) => Promise<void>,
  onError: (e: unknown, job: T | undefined) => void = () => undefined,
  concurrency = 1,
  options: WorkerOptions = {},
): Promise<WorkerHandle> {
  const maxDeliver = options.maxDeliver ?? MAX_DELIVER;
  const ackWaitMs = options.ackWaitMs ?? ACK_WAIT_MS;
  await c.jsm.consumers.add(JOBS_STREAM, {
    durable_name: durable,
    filter_subject: subject,
    ack_policy: AckPolicy.Explicit,
    ack_wait: nanos(ackWaitMs),
    max_deliver: maxDeliver,
  });
  const consumer = await c.js.consumers.get(JOBS_STREAM, durable);
  const messages = await consumer.consume({ max_messages: Math.max(8, concurrency * 2) });
  const inFlight = new Set<Promise<void>>();
  const attrs = jobAttrs(subject);
  const jm = jobMeters();
  // Zero series from the start: an alert on increase() needs a series that existed before.
  for (const counter of [jm.done, jm.failed, jm.dead, jm.running]) counter.add(0, attrs);
  const handleOne = async (m: JsMsg): Promise<void> => {
    let job: T | undefined;
    jm.running.add(1, attrs);
    try {
      job = m.json<T>();
      // Keep the message alive while long jobs (replication) run.
      const keepAlive = setInterval(() => m.working(), ackWaitMs / 3);
      try {
        await handle(job, contextFrom(m.headers), m);
      } finally {
        clearInterval(keepAlive);
      }
      m.ack();
      jm.done.add(1, attrs);
    } catch (e) {
      jm.failed.add(1, attrs);
      onError(e, job);
      const tries = m.info.deliveryCount;
      // A message that is not JSON never will be.
      const failure = job === undefined ? { code: 'invalid-argument', retryable: false } : classifyFailure(e);
      if (!failure.retryable || tries >= maxDeliver) {
        const error = e instanceof Error ? e.message : String(e);
        await publishEvent(c, 'job.dead-lettered', { subject: m.subject, tries, code: failure.code, retryable: failure.retryable, error, job }).catch(
          () => undefined,
        );
        // A bare +TERM: nats-server 2.9 ignores '+TERM <reason>' (reasons came in 2.10).
        m.term();
        jm.dead.add(1, attrs);
      } else {
        m.nak(backoffAfter(tries, options.backoffMs));
      }
    }
  };
  const done = (async () => {
    for await (const m of messages) {
      // Up to `concurrency` jobs at once (handlers serialise what must not overlap).
      while (inFlight.size >= concurrency) await Promise.race(inFlight);
      const p: Promise<void> = handleOne(m).finally(() => {
        inFlight.delete(p);
        jm.running.add(-1, attrs);
      });
      inFlight.add(p);
    }
    await Promise.all(inFlight);
  })();
  return {
    done,
    stop: async () => {
      await messages.close();
      await done;
    },
  };
}
