/**
 * NBD_OPT_STARTTLS against the real server over loopback TCP, with a real TLS client
 * (node:tls) and certificates minted by deploy/mint-certs.sh (openssl): FORCEDTLS refusals
 * before the upgrade, negotiation after it, the protocol errors (STARTTLS twice, STARTTLS
 * with data, bytes after STARTTLS), and the client-certificate checks (another CA, none, a
 * verified certificate whose identity is not allowed). The qemu and libnbd clients are in
 * services/storage-node/test/nbd-tls.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVmferryError, NotFoundError, type BlockExport, type BlockExports } from '@vmferry/core';
import { OPT, REP, startNbdServer, type RunningNbdServer } from '../src/index.js';
import { nameData, OptionClient, optionFrame, type ClientTls } from './option-client.js';

const MINT = join(__dirname, '..', '..', '..', '..', 'deploy', 'mint-certs.sh');

/** One export, "d0", of 1 MiB; negotiation only (no I/O is sent by these tests). */
const oneExport: BlockExports = {
  list: () => Promise.resolve(['d0']),
  open: (name) => {
    if (name !== 'd0') return Promise.reject(new NotFoundError('disk', name));
    const unused = (): never => {
      throw new Error('no I/O in these tests');
    };
    const exp: BlockExport = {
      name,
      size: 1 << 20,
      readOnly: true,
      preferredBlockSize: 4096,
      read: unused,
      write: unused,
      flush: unused,
      trim: unused,
      zero: unused,
      allocation: unused,
      close: () => Promise.resolve(),
    };
    return Promise.resolve(exp);
  },
};

const text = (b: Buffer): string => b.toString('utf8');

describe('NBD over TLS (STARTTLS, FORCEDTLS)', () => {
  let dir = '';
  let server: RunningNbdServer;
  const lines: string[] = [];
  const file = (name: string): Buffer => readFileSync(join(dir, name));
  const as = (who: string, ca = 'ca1'): ClientTls => ({
    ca: file('ca1/ca.crt'),
    cert: file(`${ca}/${who}.crt`),
    key: file(`${ca}/${who}.key`),
    servername: 'site-a',
  });
  const open = (): Promise<OptionClient> => OptionClient.open('127.0.0.1', server.port as number);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-nbd-tls-'));
    execFileSync('bash', [MINT, join(dir, 'ca1'), 'site-a', 'hv1', 'site-b'], { stdio: 'ignore' });
    execFileSync('bash', [MINT, join(dir, 'ca2'), 'hv1'], { stdio: 'ignore' });
    server = await startNbdServer({
      exports: oneExport,
      listen: '127.0.0.1:0',
      socketPath: join(dir, 'nbd.sock'),
      tls: {
        cert: file('ca1/site-a.crt'),
        key: file('ca1/site-a.key'),
        ca: file('ca1/ca.crt'),
        authorize: (peer) => (peer.subject.CN === 'hv1' ? undefined : `certificate CN=${String(peer.subject.CN)} may not use NBD here`),
      },
      log: (l) => lines.push(l),
    });
  });

  after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('before TLS: options get ERR_TLS_REQD, ABORT is served', async () => {
    const c = await open();
    for (const [opt, data] of [
      [OPT.LIST, undefined],
      [OPT.GO, nameData('d0')],
      [OPT.INFO, nameData('d0')],
      [OPT.STRUCTURED_REPLY, undefined],
    ] as const) {
      const [r] = await c.option(opt, data);
      assert.equal(r?.type, REP.ERR_TLS_REQD, `option ${opt}`);
      assert.match(text(r.data), /requires TLS/);
    }
    assert.equal((await c.option(OPT.ABORT))[0]?.type, REP.ACK);
    assert.ok(await c.waitClosed());
  });

  test('before TLS: EXPORT_NAME ends the session without a byte', async () => {
    const c = await open();
    c.sendRaw(optionFrame(OPT.EXPORT_NAME, Buffer.from('d0')));
    assert.ok(await c.waitClosed());
    assert.equal(c.unread, 0);
  });

  test('STARTTLS with data is invalid; then TLS, a fresh negotiation, and STARTTLS again is invalid', async () => {
    const c = await open();
    assert.equal((await c.option(OPT.STARTTLS, Buffer.from('x')))[0]?.type, REP.ERR_INVALID);
    assert.equal((await c.startTls(as('hv1')))[0]?.type, REP.ACK);
    const list = await c.option(OPT.LIST);
    assert.deepEqual(
      list.map((r) => r.type),
      [REP.SERVER, REP.ACK],
    );
    assert.equal(text(list[0]?.data.subarray(4) ?? Buffer.alloc(0)), 'd0');
    const again = await c.option(OPT.STARTTLS);
    assert.equal(again[0]?.type, REP.ERR_INVALID);
    assert.match(text(again[0]?.data ?? Buffer.alloc(0)), /already in use/);
    const info = await c.option(OPT.INFO, nameData('d0'));
    assert.deepEqual(
      info.map((r) => r.type),
      [REP.INFO, REP.ACK],
    );
    assert.equal(Number(info[0]?.data.readBigUInt64BE(2)), 1 << 20);
    assert.equal((await c.option(OPT.ABORT))[0]?.type, REP.ACK);
    assert.ok(await c.waitClosed());
  });

  test('bytes sent with STARTTLS, before the handshake, drop the connection', async () => {
    const c = await open();
    c.sendRaw(Buffer.concat([optionFrame(OPT.STARTTLS), optionFrame(OPT.LIST)]));
    assert.ok(await c.waitClosed());
    assert.ok(
      lines.some((l) => /bytes sent after NBD_OPT_STARTTLS/.test(l)),
      lines.join('\n'),
    );
  });

  test('a client certificate from another CA is refused', async () => {
    const c = await open();
    // TLS 1.3: the client may finish its side before the server has checked its certificate.
    await c.startTls(as('hv1', 'ca2')).catch(() => undefined);
    await assert.rejects(c.option(OPT.LIST), /closed/);
    assert.ok(
      lines.some((l) => /client certificate was refused/.test(l)),
      lines.join('\n'),
    );
  });

  test('a client without a certificate is refused', async () => {
    const c = await open();
    await c.startTls({ ca: file('ca1/ca.crt'), servername: 'site-a' }).catch(() => undefined);
    await assert.rejects(c.option(OPT.LIST), /closed/);
  });

  test('a verified certificate whose identity is not allowed gets ERR_POLICY with the reason', async () => {
    const c = await open();
    await c.startTls(as('site-b'));
    const [r] = await c.option(OPT.LIST);
    assert.equal(r?.type, REP.ERR_POLICY);
    assert.match(text(r.data), /CN=site-b may not use NBD/);
    assert.equal((await c.option(OPT.GO, nameData('d0')))[0]?.type, REP.ERR_POLICY);
    c.destroy();
  });

  test('the Unix socket stays plain: STARTTLS is unsupported there, options are served', async () => {
    const c = await OptionClient.openUnix(join(dir, 'nbd.sock'));
    assert.equal((await c.option(OPT.STARTTLS))[0]?.type, REP.ERR_UNSUP);
    assert.deepEqual(
      (await c.option(OPT.LIST)).map((r) => r.type),
      [REP.SERVER, REP.ACK],
    );
    c.destroy();
  });

  test('without TLS the server refuses a TCP address beyond loopback, before binding', async () => {
    await assert.rejects(
      startNbdServer({ exports: oneExport, listen: '192.0.2.1:10809' }),
      (e: unknown) => isVmferryError(e) && e.code === 'failed-precondition' && /without TLS/.test(e.message),
    );
  });
});
