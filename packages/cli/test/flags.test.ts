/*
 * Bad numbers on the command line are refused before anything connects, naming the flag:
 * `--streams x` used to walk nothing and then report that the root "has not arrived".
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { InvalidArgumentError } from '@vmferry/core';
import { wholeNumberFlag } from '../src/flags.js';

const BIN = join(__dirname, '..', '..', 'bin', 'vmferry.js');

/** Runs the CLI; a node address nobody listens on, so anything that connects fails differently. */
function vmferry(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, '--node', '127.0.0.1:1', '--nats', 'nats://127.0.0.1:1', ...args],
      { env: { ...process.env, VMFERRY_PROMETHEUS_PORT: '' } },
      (err, _out, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr });
      },
    );
  });
}

describe('wholeNumberFlag', () => {
  test('takes decimal digits in range', () => {
    assert.equal(wholeNumberFlag('--streams', '4', 1, 64), 4);
    assert.equal(wholeNumberFlag('--streams', ' 64 ', 1, 64), 64);
  });

  test('refuses what Number() would have taken, naming the flag', () => {
    for (const bad of ['x', '', '1.5', '1e3', '0x10', '-1', '0', '65', '4x']) {
      assert.throws(
        () => wholeNumberFlag('--streams', bad, 1, 64),
        (e: unknown) => e instanceof InvalidArgumentError && e.message === `--streams must be a whole number from 1 to 64, not '${bad}'`,
        bad,
      );
    }
  });
});

describe('numeric flags of the replication commands', () => {
  test('replicate --streams x and --sessions-per-link 0 are refused before connecting', async () => {
    const streams = await vmferry(['replicate', 'web@s1', '--from', 'siteA', '--to', 'siteB', '--certs', '/nonexistent', '--streams', 'x']);
    assert.equal(streams.code, 1);
    assert.equal(streams.stderr, "vmferry: --streams must be a whole number from 1 to 64, not 'x'\n");
    const sessions = await vmferry(['replicate', 'web@s1', '--from', 'siteA', '--to', 'siteB', '--certs', '/nonexistent', '--sessions-per-link', '0']);
    assert.equal(sessions.stderr, "vmferry: --sessions-per-link must be a whole number from 1 to 1024, not '0'\n");
  });

  test('replicator: every bad flag at once, half a TLS set among them', async () => {
    const r = await vmferry(['replicator', '--site', 'siteB', '--streams', 'x', '--sessions-per-link', '1.5', '--tls-cert', 'b.crt']);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      [
        'vmferry: bad replicator configuration:',
        '  streams: --streams must be a whole number from 1 to 64',
        '  sessionsPerLink: --sessions-per-link must be a whole number from 1 to 1024',
        '  tlsCert: give all three of --tls-cert, --tls-key, --tls-ca',
        '',
      ].join('\n'),
    );
  });

  test('scheduler: a bad --id is refused before connecting', async () => {
    const r = await vmferry(['scheduler', '--id', 'two words']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'vmferry: bad scheduler configuration:\n  id: --id must be a simple name\n');
  });
});
