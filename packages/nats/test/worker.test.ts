/*
 * The job plane against a real nats-server: message-id dedup, the worker's ack / nak-with-
 * backoff / dead-letter behaviour, and trace context through NATS headers.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { context, propagation, ROOT_CONTEXT, trace, TraceFlags, type Context, type SpanContext } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { ChunkCorruptError, InvalidArgumentError, LimitExceededError, UnavailableError } from '@vmferry/core';
import { startNatsServer, type NatsServer } from '@vmferry/testkit';
import {
  backoffAfter,
  BACKOFF_MS,
  contextFrom,
  EVENTS_STREAM,
  eventSubject,
  JOBS_STREAM,
  MAX_DELIVER,
  openCoordination,
  publishJob,
  runWorker,
  traceHeaders,
  type Coordination,
  type VmferryEvent,
} from '../src/index.js';

interface TestJob {
  readonly n: number;
}

/** A job published after the ones under test: once it is handled, an earlier redelivery would have shown. */
const SENTINEL = -1;
/** Backoffs short enough for a test, long enough to measure (the real ones are 1, 5, 15, 60 s). */
const TEST_BACKOFF_MS = [300, 900, 5000];

let server: NatsServer;
let c: Coordination;

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

async function messagesOn(subject: string): Promise<number> {
  const info = await c.jsm.streams.info(JOBS_STREAM, { subjects_filter: subject });
  return info.state.subjects?.[subject] ?? 0;
}

before(async () => {
  server = await startNatsServer();
  c = await openCoordination(server.url, 'worker-test');
});

after(async () => {
  await c?.close();
  await server?.stop();
});

describe('publishJob', () => {
  test('the same message id twice stores one message', async () => {
    const subject = 'vmferry.jobs.test-dedup';
    const first = await publishJob(c, subject, { n: 1 }, 'dedup-1');
    const second = await publishJob(c, subject, { n: 2 }, 'dedup-1');
    assert.deepEqual(first, { duplicate: false });
    assert.deepEqual(second, { duplicate: true });
    assert.equal(await messagesOn(subject), 1);
    // The stored one is the first.
    const stored = await c.jsm.streams.getMessage(JOBS_STREAM, { last_by_subj: subject });
    assert.deepEqual(stored?.json<TestJob>(), { n: 1 });
    // A different id is a different job.
    assert.deepEqual(await publishJob(c, subject, { n: 3 }, 'dedup-2'), { duplicate: false });
    assert.equal(await messagesOn(subject), 2);
  });

  test('the duplicate window covers the whole stream, not just one subject', async () => {
    await publishJob(c, 'vmferry.jobs.test-dedup-a', { n: 1 }, 'dedup-shared');
    const r = await publishJob(c, 'vmferry.jobs.test-dedup-b', { n: 1 }, 'dedup-shared');
    assert.equal(r.duplicate, true);
    assert.equal(await messagesOn('vmferry.jobs.test-dedup-b'), 0);
  });
});

describe('backoffAfter', () => {
  test('the production schedule: 1 s, 5 s, 15 s, then 60 s for every later failure', () => {
    assert.deepEqual(BACKOFF_MS, [1000, 5000, 15_000, 60_000]);
    assert.deepEqual(
      [1, 2, 3, 4, 5, 9].map((tries) => backoffAfter(tries)),
      [1000, 5000, 15_000, 60_000, 60_000, 60_000],
    );
    assert.deepEqual(
      [1, 2, 3].map((tries) => backoffAfter(tries, [20])),
      [20, 20, 20],
    );
  });
});

describe('runWorker', () => {
  test('acks successful jobs: they leave the work queue and are not redelivered', async () => {
    const subject = 'vmferry.jobs.test-ack';
    for (let n = 0; n < 5; n++) await publishJob(c, subject, { n }, `ack-${n}`);
    const seen: { n: number; tries: number }[] = [];
    const errors: unknown[] = [];
    const w = await runWorker<TestJob>(
      c,
      'test-ack',
      subject,
      async (job, _ctx, msg) => {
        seen.push({ n: job.n, tries: msg.info.deliveryCount });
      },
      (e) => errors.push(e),
    );
    try {
      await waitFor('5 jobs', () => seen.length >= 5);
      await waitFor('acks to reach the server', async () => {
        const ci = await c.jsm.consumers.info(JOBS_STREAM, 'test-ack');
        return ci.num_ack_pending === 0 && ci.num_pending === 0;
      });
      assert.equal(await messagesOn(subject), 0, 'work-queue messages are removed when acked');
      // A later job is handled: nothing acked before it came back.
      await publishJob(c, subject, { n: SENTINEL }, 'ack-sentinel');
      await waitFor('the sentinel job', () => seen.some((s) => s.n === SENTINEL));
      assert.deepEqual(
        seen
          .map((s) => s.n)
          .filter((n) => n !== SENTINEL)
          .sort(),
        [0, 1, 2, 3, 4],
      );
      assert.ok(
        seen.every((s) => s.tries === 1),
        JSON.stringify(seen),
      );
      assert.deepEqual(errors, []);
      const ci = await c.jsm.consumers.info(JOBS_STREAM, 'test-ack');
      assert.equal(ci.num_redelivered, 0);
    } finally {
      await w.stop();
    }
    // done resolves once stopped
    await w.done;
  });

  test('a job failing twice is redelivered with backoff and acked on the 3rd delivery', async () => {
    const subject = 'vmferry.jobs.test-retry';
    const deliveries: { tries: number; atMs: number }[] = [];
    const errors: { message: string; job: TestJob | undefined }[] = [];
    let succeeded = false;
    let sentinelSeen = false;
    const w = await runWorker<TestJob>(
      c,
      'test-retry',
      subject,
      async (job, _ctx, msg) => {
        if (job.n === SENTINEL) {
          sentinelSeen = true;
          return;
        }
        deliveries.push({ tries: msg.info.deliveryCount, atMs: Date.now() });
        if (msg.info.deliveryCount < 3) throw new Error(`transient failure ${msg.info.deliveryCount}`);
        succeeded = true;
      },
      (e, job) => errors.push({ message: (e as Error).message, job }),
      1,
      { backoffMs: TEST_BACKOFF_MS },
    );
    try {
      await publishJob(c, subject, { n: 42 }, 'retry-1');
      await waitFor('the 3rd delivery', () => succeeded, 15_000);
      await waitFor('the ack', async () => (await c.jsm.consumers.info(JOBS_STREAM, 'test-retry')).num_ack_pending === 0);
      assert.deepEqual(
        deliveries.map((d) => d.tries),
        [1, 2, 3],
      );
      const gap = (i: number): number => (deliveries[i]?.atMs ?? NaN) - (deliveries[i - 1]?.atMs ?? NaN);
      // nak with delay: the 1st backoff after the 1st failure, the 2nd after the 2nd.
      assert.ok(gap(1) >= (TEST_BACKOFF_MS[0] as number) - 100, `1st redelivery after ${gap(1)} ms`);
      assert.ok(gap(2) >= (TEST_BACKOFF_MS[1] as number) - 100, `2nd redelivery after ${gap(2)} ms`);
      assert.ok(gap(2) < (TEST_BACKOFF_MS[2] as number), `2nd redelivery after ${gap(2)} ms`);
      assert.deepEqual(errors, [
        { message: 'transient failure 1', job: { n: 42 } },
        { message: 'transient failure 2', job: { n: 42 } },
      ]);
      assert.equal(await messagesOn(subject), 0);
      // No 4th delivery by the time a later job has been handled.
      await publishJob(c, subject, { n: SENTINEL }, 'retry-sentinel');
      await waitFor('the sentinel job', () => sentinelSeen);
      assert.equal(deliveries.length, 3);
    } finally {
      await w.stop();
    }
  });

  test(`a job failing ${MAX_DELIVER} times is dead-lettered (event) and not delivered again`, async () => {
    // The real backoff (1 + 5 + 15 + 60 s) is too slow for a test: the worker is given a short one.
    const subject = 'vmferry.jobs.test-dead';
    const tries: number[] = [];
    let sentinelSeen = false;
    const w = await runWorker<TestJob>(
      c,
      'test-dead',
      subject,
      async (job, _ctx, msg) => {
        if (job.n === SENTINEL) {
          sentinelSeen = true;
          return;
        }
        tries.push(msg.info.deliveryCount);
        throw new Error(`permanent failure ${msg.info.deliveryCount}`);
      },
      undefined,
      1,
      { backoffMs: [20] },
    );
    try {
      const started = Date.now();
      await publishJob(c, subject, { n: 7 }, 'dead-1');
      const deadSubject = eventSubject('job.dead-lettered');
      let event: VmferryEvent | undefined;
      await waitFor(
        'the job.dead-lettered event',
        async () => {
          const m = await c.jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: deadSubject }).catch(() => null);
          const e = m?.json<VmferryEvent>();
          if (e?.['subject'] === subject) event = e;
          return event !== undefined;
        },
        20_000,
      );
      assert.ok(event);
      assert.equal(event.kind, 'job.dead-lettered');
      assert.equal(event['tries'], MAX_DELIVER);
      assert.equal(event['error'], `permanent failure ${MAX_DELIVER}`);
      assert.deepEqual(event['job'], { n: 7 });
      assert.ok(event.atMs >= started);
      assert.deepEqual(tries, [1, 2, 3, 4, 5]);
      // Terminated: no 6th delivery by the time a later job has been handled, nothing pending.
      await publishJob(c, subject, { n: SENTINEL }, 'dead-sentinel');
      await waitFor('the sentinel job', () => sentinelSeen);
      assert.deepEqual(tries, [1, 2, 3, 4, 5]);
      // The term (and the sentinel's ack) reached the server: not pending, gone from the work queue.
      await waitFor('nothing pending', async () => {
        const ci = await c.jsm.consumers.info(JOBS_STREAM, 'test-dead');
        return ci.num_ack_pending === 0 && ci.num_pending === 0;
      });
      assert.equal(await messagesOn(subject), 0);
    } finally {
      await w.stop();
    }
  });
});

/** Waits for the job.dead-lettered event of `subject`. */
async function deadLetterOf(subject: string): Promise<VmferryEvent> {
  let event: VmferryEvent | undefined;
  await waitFor(`the job.dead-lettered event of ${subject}`, async () => {
    const m = await c.jsm.streams.getMessage(EVENTS_STREAM, { last_by_subj: eventSubject('job.dead-lettered') }).catch(() => null);
    const e = m?.json<VmferryEvent>();
    if (e?.['subject'] === subject) event = e;
    return event !== undefined;
  });
  return event as VmferryEvent;
}

/** A gRPC ServiceError as grpc-js delivers it (status, details, metadata with the node's code). */
function serviceError(code: number, details: string, meta: Record<string, string> = {}): Error {
  const metadata = { get: (k: string): unknown[] => (k in meta ? [meta[k]] : []) };
  return Object.assign(new Error(`${code} ${details}`), { code, details, metadata });
}

describe('runWorker: final failures are not retried', () => {
  const finals: { name: string; error: () => Error; code: string }[] = [
    { name: 'DATA_LOSS from a lying source', error: () => new ChunkCorruptError('ab'.repeat(32), 'hash mismatch'), code: 'data-loss' },
    { name: 'INVALID_ARGUMENT', error: () => new InvalidArgumentError('size 5 of vDisk 0 is not whole 512-byte sectors'), code: 'invalid-argument' },
    {
      name: 'the snapshot cap (RESOURCE_EXHAUSTED, a fixed limit)',
      error: () => new LimitExceededError('VM web has 1024 snapshots'),
      code: 'resource-exhausted',
    },
    {
      name: 'a gRPC DATA_LOSS from the node',
      error: () => serviceError(15, 'chunk 1234 is corrupt', { 'vmferry-error-code': 'data-loss', 'vmferry-retryable': 'false' }),
      code: 'data-loss',
    },
    { name: 'a gRPC INVALID_ARGUMENT without node metadata', error: () => serviceError(3, 'bad'), code: 'INVALID_ARGUMENT' },
  ];
  finals.forEach((f, i) => {
    test(`${f.name}: tried once, dead-lettered at once with its code and message`, async () => {
      const subject = `vmferry.jobs.test-final-${i}`;
      const tries: number[] = [];
      const thrown = f.error();
      const w = await runWorker<TestJob>(c, `test-final-${i}`, subject, async (_job, _ctx, msg) => {
        tries.push(msg.info.deliveryCount);
        throw thrown;
      });
      try {
        await publishJob(c, subject, { n: i }, `final-${i}`);
        const event = await deadLetterOf(subject);
        assert.equal(event['tries'], 1);
        assert.equal(event['code'], f.code);
        assert.equal(event['retryable'], false);
        assert.equal(event['error'], thrown.message);
        assert.deepEqual(event['job'], { n: i });
        // Terminated at the server: nothing pending, gone from the work queue, so no 2nd try.
        await waitFor('the term', async () => {
          const ci = await c.jsm.consumers.info(JOBS_STREAM, `test-final-${i}`);
          return ci.num_ack_pending === 0 && ci.num_pending === 0;
        });
        assert.equal(await messagesOn(subject), 0);
        assert.deepEqual(tries, [1]);
      } finally {
        await w.stop();
      }
    });
  });

  const transients: { name: string; error: () => Error }[] = [
    { name: 'UNAVAILABLE (core)', error: () => new UnavailableError('site siteA unreachable') },
    { name: 'a gRPC UNAVAILABLE', error: () => serviceError(14, 'No connection established') },
    { name: 'a socket error', error: () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) },
  ];
  transients.forEach((t, i) => {
    test(`${t.name}: retried, and acked when the retry succeeds`, async () => {
      const subject = `vmferry.jobs.test-transient-${i}`;
      const tries: number[] = [];
      let acked = false;
      const w = await runWorker<TestJob>(c, `test-transient-${i}`, subject, async (_job, _ctx, msg) => {
        tries.push(msg.info.deliveryCount);
        if (msg.info.deliveryCount === 1) throw t.error();
        acked = true;
      });
      try {
        await publishJob(c, subject, { n: i }, `transient-${i}`);
        await waitFor('the 2nd delivery', () => acked);
        assert.deepEqual(tries, [1, 2]);
      } finally {
        await w.stop();
      }
    });
  });
});

describe('runWorker concurrency', () => {
  for (const concurrency of [1, 3]) {
    test(`runs at most ${concurrency} handler(s) at once`, async () => {
      const subject = `vmferry.jobs.test-conc-${concurrency}`;
      for (let n = 0; n < 6; n++) await publishJob(c, subject, { n }, `conc-${concurrency}-${n}`);
      let running = 0;
      let peak = 0;
      let finished = 0;
      const w = await runWorker<TestJob>(
        c,
        `test-conc-${concurrency}`,
        subject,
        async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(200);
          running--;
          finished++;
        },
        undefined,
        concurrency,
      );
      try {
        await waitFor('6 jobs', () => finished >= 6);
        assert.equal(peak, concurrency);
      } finally {
        await w.stop();
      }
    });
  }
});

describe('trace context', () => {
  const span: SpanContext = {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: false,
  };

  before(() => {
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });

  after(() => {
    propagation.disable();
  });

  test('traceHeaders() writes traceparent; contextFrom() reads it back', () => {
    const ctx = trace.setSpanContext(ROOT_CONTEXT, span);
    const h = traceHeaders(ctx);
    assert.equal(h.get('traceparent'), `00-${span.traceId}-${span.spanId}-01`);
    const back = trace.getSpanContext(contextFrom(h));
    assert.deepEqual(back && { traceId: back.traceId, spanId: back.spanId, traceFlags: back.traceFlags, isRemote: back.isRemote }, { ...span, isRemote: true });
    // No headers (or none with a trace): the active context, without a span.
    assert.equal(contextFrom(undefined), context.active());
    assert.equal(trace.getSpanContext(contextFrom(traceHeaders(ROOT_CONTEXT))), undefined);
  });

  test('a job published with a context reaches the worker with that trace', async () => {
    const subject = 'vmferry.jobs.test-trace';
    const got: Context[] = [];
    const w = await runWorker<TestJob>(c, 'test-trace', subject, async (_job, ctx) => {
      got.push(ctx);
    });
    try {
      await publishJob(c, subject, { n: 1 }, 'trace-1', trace.setSpanContext(ROOT_CONTEXT, span));
      // Without a context: the publisher's active one (no span here), so no trace.
      await publishJob(c, subject, { n: 2 }, 'trace-2');
      await waitFor('both jobs', () => got.length >= 2);
      const traced = got.map((ctx) => trace.getSpanContext(ctx));
      const withSpan = traced.filter((s) => s !== undefined);
      assert.equal(withSpan.length, 1, 'exactly one of the jobs carried a trace');
      assert.equal(withSpan[0]?.traceId, span.traceId);
      assert.equal(withSpan[0]?.spanId, span.spanId);
      assert.equal(withSpan[0]?.traceFlags, TraceFlags.SAMPLED);
      assert.equal(withSpan[0]?.isRemote, true);
    } finally {
      await w.stop();
    }
  });
});
