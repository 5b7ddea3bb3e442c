/**
 * fromServiceError over a real grpc-js server on port 0: the code and retryable flag the server
 * put in metadata come back; without metadata the status decides; a non-gRPC error passes through.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { LimitExceededError, NotFoundError, StorageFullError, UnavailableError, VmferryError, isVmferryError } from '@vmferry/core';
import { asCoreError, bind, remoteFailure, shutdown, toServiceError } from '../src/index.js';
import { unaryCall } from '../src/client/calls.js';

const identity = (b: Buffer): Buffer => b;
/** One unary method whose request (UTF-8) names how it fails. */
const service: grpc.ServiceDefinition = {
  fail: {
    path: '/vmferry.test.Errors/Fail',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const failures: Record<string, () => Partial<grpc.ServiceError>> = {
  // A fixed cap: resource-exhausted that is final, which the status alone cannot say.
  cap: () => toServiceError(new LimitExceededError('at most 3 snapshots per VM')),
  // A full disk: the same status, worth a retry.
  full: () => toServiceError(new StorageFullError('the data directory is full')),
  missing: () => toServiceError(new NotFoundError('vm', 'web1')),
  // As an older node or grpc-js itself answers: a status, no vmferry metadata.
  bare: () => ({ code: grpc.status.NOT_FOUND, details: 'no such thing' }),
  'bare-unavailable': () => ({ code: grpc.status.UNAVAILABLE, details: 'going away' }),
};

type Call = (req: Buffer, cb: (err: grpc.ServiceError | null, res: Buffer) => void) => unknown;

describe('fromServiceError over a real server', () => {
  const server = new grpc.Server();
  let client: grpc.Client & { fail: Call };
  let address = '';

  before(async () => {
    server.addService(service, {
      fail: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const make = failures[call.request.toString()];
        if (make) cb(make());
        else cb(null, call.request);
      },
    });
    const port = await bind(server, '127.0.0.1:0', grpc.ServerCredentials.createInsecure());
    address = `127.0.0.1:${port}`;
    const Client = grpc.makeGenericClientConstructor(service, 'Errors');
    client = new Client(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { fail: Call };
  });

  after(async () => {
    client.close();
    await shutdown(server);
  });

  const fail = async (what: string): Promise<VmferryError> => {
    try {
      await unaryCall<Buffer, Buffer>((r, cb) => client.fail(r, cb), Buffer.from(what), `the test server at ${address}`);
    } catch (e) {
      assert.ok(isVmferryError(e), `a core error: ${String(e)}`);
      return e;
    }
    throw new Error(`'${what}' did not fail`);
  };

  test('code and retryable are read back from metadata', async () => {
    const cap = await fail('cap');
    assert.equal(cap.code, 'resource-exhausted');
    assert.equal(cap.retryable, false, 'a configured cap is final');
    assert.equal(cap.message, 'at most 3 snapshots per VM');
    const full = await fail('full');
    assert.equal(full.code, 'resource-exhausted');
    assert.equal(full.retryable, true, 'a full disk may recover');
    const missing = await fail('missing');
    assert.equal(missing.code, 'not-found');
    assert.equal(missing.retryable, false);
    assert.equal(missing.message, "vm 'web1' not found");
    assert.deepEqual(remoteFailure(missing), { status: 'NOT_FOUND', details: "vm 'web1' not found" });
  });

  test('without metadata, the status decides the code and its default retryability', async () => {
    const bare = await fail('bare');
    assert.equal(bare.code, 'not-found');
    assert.equal(bare.retryable, false);
    assert.equal(bare.message, 'no such thing');
    const down = await fail('bare-unavailable');
    assert.equal(down.code, 'unavailable');
    assert.equal(down.retryable, true);
    assert.equal(down.message, `cannot reach the test server at ${address}: going away`, 'an unreachable peer is named');
  });

  test('a server that is not there is unavailable and retryable', async () => {
    const probe = new grpc.Server();
    const port = await bind(probe, '127.0.0.1:0', grpc.ServerCredentials.createInsecure());
    await shutdown(probe);
    const Client = grpc.makeGenericClientConstructor(service, 'Errors');
    const gone = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { fail: Call };
    try {
      await assert.rejects(
        unaryCall<Buffer, Buffer>((r, cb) => gone.fail(r, cb), Buffer.from('ok')),
        (e: unknown) => {
          assert.ok(isVmferryError(e));
          assert.equal(e.code, 'unavailable');
          assert.equal(e.retryable, true);
          assert.equal(remoteFailure(e)?.status, 'UNAVAILABLE');
          return true;
        },
      );
    } finally {
      gone.close();
    }
  });

  test('a non-gRPC error passes through unchanged', async () => {
    const plain = new TypeError('not a call failure');
    assert.equal(asCoreError(plain), plain);
    const local = new UnavailableError('NATS is down');
    assert.equal(asCoreError(local), local);
    assert.equal(remoteFailure(local), undefined, 'a local error did not come off the wire');
    assert.equal((await unaryCall<Buffer, Buffer>((r, cb) => client.fail(r, cb), Buffer.from('ok'))).toString(), 'ok');
  });
});
