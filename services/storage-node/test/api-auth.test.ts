/*
 * The management API beyond loopback (issue 12 item 5), over real sockets with real node
 * processes and the CLI: refused at start-up without a credential; with a bearer token, a
 * call without it or with a wrong one gets UNAUTHENTICATED and changes nothing; with mTLS, a
 * certificate from another CA fails the handshake, a peer site's certificate of the same CA
 * gets PERMISSION_DENIED, and an allowed client works. Every refusal is checked by listing
 * the VMs afterwards with a good credential.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mintCerts, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { removeDir, tempDir } from './helpers.js';

const TOKEN = 'f1d2d2f924e986ac86fdf7b36c94bcdf32beec15';

/** 127.0.0.1:PORT of a node listening on 0.0.0.0:PORT (the CLI dials the loopback side of it). */
const local = (n: NodeProcess): string => `127.0.0.1:${n.address.slice(n.address.lastIndexOf(':') + 1)}`;

async function vmNames(address: string, creds: string[]): Promise<string[]> {
  const r = await runCli(address, [...creds, '--json', 'vm', 'list']);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { name: string }[]).map((v) => v.name);
}

describe('management API authentication beyond loopback', () => {
  let dir = '';
  const nodes: NodeProcess[] = [];
  const file = (name: string, text: string, mode = 0o600): string => {
    const path = join(dir, name);
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };

  before(() => {
    dir = tempDir();
    mintCerts(join(dir, 'certs'), ['siteA', 'siteB', 'admin']);
    mintCerts(join(dir, 'other-ca'), ['admin']);
  });

  after(async () => {
    for (const n of nodes) await n.kill();
    removeDir(dir);
  });

  test('a node refuses to listen beyond loopback without --api-token-file or --api-tls, naming both', async () => {
    await assert.rejects(startNodeProcess({ dataDir: join(dir, 'refused'), listen: '0.0.0.0:0' }), (e: Error) => {
      assert.match(e.message, /exited with 1/);
      assert.match(e.message, /--listen 0\.0\.0\.0:0 is beyond loopback: the management API there needs --api-token-file FILE or --api-tls/);
      return true;
    });
    const loose = file('loose-token', TOKEN, 0o644);
    await assert.rejects(
      startNodeProcess({ dataDir: join(dir, 'refused'), listen: '0.0.0.0:0', extraArgs: ['--api-token-file', loose] }),
      /readable by other users \(mode 644\): chmod 600 it/,
    );
    const short = file('short-token', 'abc');
    await assert.rejects(
      startNodeProcess({ dataDir: join(dir, 'refused'), listen: '0.0.0.0:0', extraArgs: ['--api-token-file', short] }),
      /the token is 3 characters; use at least 16/,
    );
  });

  test('bearer token: missing or wrong is UNAUTHENTICATED and changes nothing; the right one works', async () => {
    const tokenFile = file('token', `${TOKEN}\n`);
    const node = await startNodeProcess({ dataDir: join(dir, 'token-node'), listen: '0.0.0.0:0', extraArgs: ['--api-token-file', tokenFile] });
    nodes.push(node);
    assert.match(node.log(), /management API \(bearer token\)/);
    const address = local(node);
    const good = ['--node-token-file', tokenFile];

    const none = await runCli(address, ['vm', 'create', 'intruder', '--disk', '1M']);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /requires a bearer token: give the client --node-token-file FILE \(or VMFERRY_NODE_TOKEN_FILE\) \(UNAUTHENTICATED\)/);

    const wrong = await runCli(address, [
      '--node-token-file',
      file('wrong-token', 'not-the-token-at-all-0123456789'),
      'vm',
      'create',
      'intruder',
      '--disk',
      '1M',
    ]);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /the bearer token is not this node's API token \(--api-token-file on the node\) \(UNAUTHENTICATED\)/);

    // A client-streaming call refused before its handler ran: no half import left behind.
    writeFileSync(join(dir, 'img'), Buffer.alloc(1024 * 1024, 7));
    const upload = await runCli(address, ['vm', 'import', 'intruder2', join(dir, 'img')]);
    assert.equal(upload.code, 1);
    assert.match(upload.stderr, /UNAUTHENTICATED/);

    assert.deepEqual(await vmNames(address, good), [], 'nothing was created by the refused calls');
    const ok = await runCli(address, [...good, '--json', 'vm', 'create', 'web', '--disk', '1M']);
    assert.equal(ok.code, 0, ok.stderr);
    const env = await runCli(address, ['--json', 'vm', 'list'], { VMFERRY_NODE_TOKEN_FILE: tokenFile });
    assert.equal(env.code, 0, env.stderr);
    assert.deepEqual(
      (JSON.parse(env.stdout) as { name: string }[]).map((v) => v.name),
      ['web'],
      'the env var works as the flag',
    );
  });

  test('mTLS: another CA fails the handshake, a peer site of the same CA is PERMISSION_DENIED, an allowed client works', async () => {
    const certs = join(dir, 'certs');
    const node = await startNodeProcess({
      dataDir: join(dir, 'tls-node'),
      listen: '0.0.0.0:0',
      extraArgs: [
        '--site',
        'siteA',
        '--api-tls',
        '--api-clients',
        'admin',
        ...['--tls-cert', join(certs, 'siteA.crt'), '--tls-key', join(certs, 'siteA.key'), '--tls-ca', join(certs, 'ca.crt')],
      ],
    });
    nodes.push(node);
    assert.match(node.log(), /management API \(mTLS, certificates siteA, admin\)/);
    const address = local(node);
    const client = (ca: string, name: string): string[] => [
      ...['--node-tls-cert', join(ca, `${name}.crt`), '--node-tls-key', join(ca, `${name}.key`), '--node-tls-ca', join(certs, 'ca.crt')],
      ...['--node-tls-name', 'siteA'],
    ];

    const plain = await runCli(address, ['vm', 'create', 'intruder', '--disk', '1M']);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /UNAVAILABLE/);

    const otherCa = await runCli(address, [...client(join(dir, 'other-ca'), 'admin'), 'vm', 'create', 'intruder', '--disk', '1M']);
    assert.equal(otherCa.code, 1);
    assert.match(otherCa.stderr, /UNAVAILABLE/, 'the handshake fails: no call reaches the node');

    const peer = await runCli(address, [...client(certs, 'siteB'), 'vm', 'create', 'intruder', '--disk', '1M']);
    assert.equal(peer.code, 1);
    assert.match(peer.stderr, /certificate CN=siteB may not use this node's API \(allowed: siteA, admin;.*\(PERMISSION_DENIED\)/);

    const partial = await runCli(address, ['--node-tls-cert', join(certs, 'admin.crt'), 'vm', 'list']);
    assert.equal(partial.code, 1);
    assert.match(partial.stderr, /give all three of --node-tls-cert, --node-tls-key, --node-tls-ca/);

    assert.deepEqual(await vmNames(address, client(certs, 'admin')), [], 'nothing was created by the refused calls');
    const ok = await runCli(address, [...client(certs, 'admin'), '--json', 'vm', 'create', 'web', '--disk', '1M']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(await vmNames(address, client(certs, 'admin')), ['web']);
  });
});
