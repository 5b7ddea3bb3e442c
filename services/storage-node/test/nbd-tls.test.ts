/**
 * NBD over TLS with real clients only: qemu-img, qemu-io (tls-creds-x509), nbdinfo and
 * nbdcopy (nbds:// with tls-certificates=DIR), against a real node process serving with the
 * site's certificate files (deploy/mint-certs.sh). Data written over TLS reads back
 * hash-equal, over TLS and over gRPC. Refused, each with a message: a plaintext client
 * (ERR_TLS_REQD), a client certificate from another CA, a peer site's certificate (a valid
 * chain, an identity not allowed on NBD). And without TLS files a node refuses to start NBD
 * beyond loopback, naming --nbd-listen.
 *
 * The server certificate is minted for `localhost`: libnbd 1.14 checks it against the host
 * it dials and has no override; qemu dials 127.0.0.1 and names the host with tls-hostname.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliJson, mintCerts, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { exportDisk, MiB, random, removeDir, sha256, tempDir } from './helpers.js';
import { mustRun, tool } from './nbd-helpers.js';

const DISK = 32 * MiB;

describe('NBD over TLS with real clients', () => {
  let dir = '';
  let node: NodeProcess;
  let host = '';
  let port = 0;
  /** A client folder as qemu and libnbd expect it: ca-cert.pem, client-cert.pem, client-key.pem. */
  const clientDir = (name: string, certDir: string, who: string, cas: readonly string[]): string => {
    const d = join(dir, `client-${name}`);
    mkdirSync(d);
    writeFileSync(join(d, 'ca-cert.pem'), Buffer.concat(cas.map((c) => readFileSync(join(dir, c, 'ca.crt')))));
    copyFileSync(join(dir, certDir, `${who}.crt`), join(d, 'client-cert.pem'));
    copyFileSync(join(dir, certDir, `${who}.key`), join(d, 'client-key.pem'));
    return d;
  };
  let hv1 = '';
  const qemuObject = (creds: string): string[] => ['--object', `tls-creds-x509,id=tls0,endpoint=client,dir=${creds}`];
  const qemuOpts = (name: string): string => `driver=nbd,host=${host},port=${port},export=${name},tls-creds=tls0,tls-hostname=localhost`;
  const nbds = (name: string, creds: string): string => `nbds://localhost:${port}/${name}?tls-certificates=${creds}`;

  before(async () => {
    dir = tempDir();
    mintCerts(join(dir, 'ca'), ['localhost', 'hv1', 'site-b']);
    mintCerts(join(dir, 'other-ca'), ['hv1']);
    hv1 = clientDir('hv1', 'ca', 'hv1', ['ca']);
    node = await startNodeProcess({
      dataDir: join(dir, 'data'),
      extraArgs: [
        '--site',
        'site-a',
        '--tls-cert',
        join(dir, 'ca', 'localhost.crt'),
        '--tls-key',
        join(dir, 'ca', 'localhost.key'),
        '--tls-ca',
        join(dir, 'ca', 'ca.crt'),
        '--nbd-listen',
        '127.0.0.1:0',
        '--nbd-clients',
        'hv1',
      ],
    });
    assert.ok(node.nbdAddress, `the node prints its NBD address:\n${node.log()}`);
    assert.match(node.log(), /NBD server on \S+ \(TLS required; client certificates from --tls-ca named site-a, hv1\)/);
    const i = node.nbdAddress.lastIndexOf(':');
    host = node.nbdAddress.slice(0, i);
    port = Number(node.nbdAddress.slice(i + 1));
    await cliJson(node.address, ['vm', 'create', 'web', '--disk', '32M', '--disk', '16M']);
  });

  after(async () => {
    await node.stop();
    removeDir(dir);
  });

  test('qemu-img and nbdinfo over TLS report the size', async () => {
    const info = JSON.parse(await mustRun('qemu-img', ['info', '--output=json', ...qemuObject(hv1), '--image-opts', qemuOpts('web/0')])) as {
      'virtual-size': number;
    };
    assert.equal(info['virtual-size'], DISK);
    assert.equal((await mustRun('nbdinfo', ['--size', nbds('web/1', hv1)])).trim(), String(16 * MiB));
    assert.match(await mustRun('nbdinfo', [nbds('web/0', hv1)]), /protocol: newstyle-fixed with TLS/);
  });

  test('data written over TLS (qemu-img convert, qemu-io) reads back hash-equal over TLS and over gRPC', async () => {
    const bytes = Buffer.alloc(DISK);
    random(8 * MiB).copy(bytes, 0);
    random(MiB).copy(bytes, 20 * MiB);
    const image = join(dir, 'image.raw');
    writeFileSync(image, bytes);
    await mustRun('qemu-img', ['convert', '-n', ...qemuObject(hv1), '-f', 'raw', image, '--target-image-opts', qemuOpts('web/0')]);
    const out = await mustRun('qemu-io', [
      ...qemuObject(hv1),
      '--image-opts',
      qemuOpts('web/1'),
      '-c',
      'write -P 0xab 4096 4096',
      '-c',
      'write -P 0xcd 5000 1000',
      '-c',
      'flush',
      '-c',
      'read -P 0xcd 5000 1000',
    ]);
    assert.match(out, /read 1000\/1000 bytes at offset 5000/);
    const back = join(dir, 'back.raw');
    await mustRun('nbdcopy', [nbds('web/0', hv1), back]);
    assert.equal(sha256(readFileSync(back)), sha256(bytes), 'read back over TLS (nbdcopy)');
    assert.equal((await exportDisk(node.address, 'web', dir, 0)).hash, sha256(bytes), 'read back over gRPC');
    const expected = Buffer.alloc(16 * MiB);
    expected.fill(0xab, 4096, 8192);
    expected.fill(0xcd, 5000, 6000);
    assert.equal((await exportDisk(node.address, 'web', dir, 1)).hash, sha256(expected));
  });

  test('nbdcopy writes over four TLS connections at once; qemu-img compare agrees over TLS', async (t) => {
    const bytes = random(DISK);
    const src = join(dir, 'multi.raw');
    writeFileSync(src, bytes);
    const started = process.hrtime.bigint();
    await mustRun('nbdcopy', ['--connections=4', src, nbds('web/0', hv1)]);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    t.diagnostic(`nbdcopy --connections=4 wrote ${DISK / MiB} MiB over TLS in ${ms.toFixed(0)} ms`);
    // With --image-opts both images are given as options.
    await mustRun('qemu-img', ['compare', ...qemuObject(hv1), '--image-opts', `driver=raw,file.driver=file,file.filename=${src}`, qemuOpts('web/0')]);
  });

  test('a plaintext client is refused: TLS required', async () => {
    const q = await tool('qemu-img', ['info', `nbd://${host}:${port}/web/0`]);
    assert.notEqual(q.code, 0);
    assert.match(q.stderr, /TLS negotiation required/);
    assert.match(q.stderr, /server reported: this NBD server requires TLS/);
    const n = await tool('nbdinfo', ['--size', `nbd://localhost:${port}/web/0`]);
    assert.notEqual(n.code, 0);
    assert.match(n.stderr, /server requires TLS/);
  });

  test('a client certificate from another CA is refused', async () => {
    // The client must trust its own certificate's CA (qemu checks it) and the server's.
    const evil = clientDir('other-ca', 'other-ca', 'hv1', ['ca', 'other-ca']);
    const q = await tool('qemu-img', ['info', ...qemuObject(evil), '--image-opts', qemuOpts('web/0')]);
    assert.notEqual(q.code, 0, q.stdout);
    const n = await tool('nbdinfo', ['--size', nbds('web/0', evil)]);
    assert.notEqual(n.code, 0, n.stdout);
    assert.match(node.log(), /the client certificate was refused: UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  test("a peer site's certificate (same CA, not allowed on NBD) is refused with the reason", async () => {
    const peer = clientDir('site-b', 'ca', 'site-b', ['ca']);
    const q = await tool('qemu-img', ['info', ...qemuObject(peer), '--image-opts', qemuOpts('web/0')]);
    assert.notEqual(q.code, 0, q.stdout);
    assert.match(q.stderr, /Denied by server/);
    assert.match(q.stderr, /certificate CN=site-b may not use NBD on this node \(allowed: site-a, hv1; see --nbd-clients\)/);
    const n = await tool('nbdinfo', ['--size', nbds('web/0', peer)]);
    assert.notEqual(n.code, 0, n.stdout);
    assert.match(n.stderr, /server policy prevents/);
  });

  test('without TLS files a node refuses --nbd-listen beyond loopback, naming the flag', async () => {
    await assert.rejects(
      startNodeProcess({ dataDir: join(dir, 'plain'), extraArgs: ['--nbd-listen', '0.0.0.0:0'] }),
      /--nbd-listen 0\.0\.0\.0:0 is beyond loopback: NBD there needs TLS/,
    );
  });
});
