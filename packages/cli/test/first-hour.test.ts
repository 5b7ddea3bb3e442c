/*
 * A new user's first hour through the real vmferry binary against a real node process: exit
 * codes by kind, --json errors on stdout, sentences instead of library errors, did you mean,
 * export refusing to overwrite, and a qcow2 image refused then converted by the real qemu-img.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('the CLI as a new user meets it', () => {
  let dir = '';
  let node: NodeProcess | undefined;
  let addr = '';
  let raw: Buffer = Buffer.alloc(0);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-first-hour-'));
    node = await startNodeProcess({ dataDir: join(dir, 'data') });
    addr = node.address;
    raw = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < raw.length; i += 4096) raw.writeUInt32LE((i * 2654435761) >>> 0, i);
    writeFileSync(join(dir, 'web.img'), raw);
    await cliJson(addr, ['vm', 'import', 'web', join(dir, 'web.img')]);
    await cliJson(addr, ['snapshot', 'create', 'web', '--label', 'Nightly']);
  });
  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--version prints the package version and exits 0', async () => {
    const r = await runCli(addr, ['--version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
  });

  test('exit codes tell usage, invalid argument, not found and unavailable apart; --json errors on stdout', async () => {
    const usage = await runCli(addr, ['--json', 'no-such-command']);
    assert.equal(usage.code, 64);
    assert.equal((JSON.parse(usage.stdout) as { error: { code: string } }).error.code, 'usage');
    const noDisk = await runCli(addr, ['vm', 'create', 'nodisk']);
    assert.equal(noDisk.code, 64, noDisk.stderr);
    assert.match(noDisk.stderr, /--disk/);
    const badPort = await runCli('localhost', ['vm', 'list']);
    assert.equal(badPort.code, 65);
    assert.match(badPort.stderr, /--node 'localhost' is not HOST:PORT.*localhost:7400/);
    const missing = await runCli(addr, ['--json', 'vm', 'show', 'wbe']);
    assert.equal(missing.code, 66);
    const doc = JSON.parse(missing.stdout) as { error: { code: string; message: string; exitCode: number } };
    assert.equal(doc.error.code, 'not-found');
    assert.equal(doc.error.exitCode, 66);
    assert.match(doc.error.message, /did you mean web\?/);
    const label = await runCli(addr, ['snapshot', 'show', 'web@nightly']);
    assert.match(label.stderr, /did you mean web@Nightly\?/);
    const down = await runCli('127.0.0.1:1', ['vm', 'list']);
    assert.equal(down.code, 69);
  });

  test('library errors read as sentences: a missing file, a data folder in use, a port in use', async () => {
    const nofile = await runCli(addr, ['vm', 'import', 'x', join(dir, 'nope.img')]);
    assert.equal(nofile.code, 66);
    assert.match(nofile.stderr, /^vmferry: file not found: .*nope\.img\n$/);
    const locked = await runCli(addr, ['node', '--data', join(dir, 'data'), '--listen', '127.0.0.1:0']);
    assert.notEqual(locked.code, 0);
    assert.match(locked.stderr, /in use by another storage node/);
    const port = await runCli(addr, ['node', '--data', join(dir, 'other'), '--listen', addr]);
    assert.notEqual(port.code, 0);
    assert.match(port.stderr, /the port is in use by another process/);
    assert.doesNotMatch(port.stderr, /No address added|EADDRINUSE/);
  });

  test('JSON shows the hypervisor config as base64 and leaves unset fields out', async () => {
    writeFileSync(join(dir, 'domain.xml'), '<domain/>\n');
    await cliJson(addr, ['vm', 'create', 'cfg', '--disk', '1M', '--config', join(dir, 'domain.xml')]);
    const vm = await cliJson<Record<string, unknown>>(addr, ['vm', 'show', 'cfg']);
    assert.equal(Buffer.from(String(vm['hypervisorConfig']), 'base64').toString(), '<domain/>\n');
    assert.equal('replicaOf' in vm, false, 'an unset field is absent, not ""');
  });

  test('export refuses to overwrite a file without --force', async () => {
    const out = join(dir, 'out.img');
    writeFileSync(out, 'keep me');
    const r = await runCli(addr, ['disk', 'export', 'web', '0', out]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /already exists: add --force/);
    assert.equal(readFileSync(out, 'utf8'), 'keep me');
    await cliJson(addr, ['disk', 'export', 'web', '0', out, '--force']);
    assert.equal(sha(readFileSync(out)), sha(raw));
    const failed = join(dir, 'ghost.img');
    await runCli(addr, ['disk', 'export', 'ghost', '0', failed]);
    assert.equal(existsSync(failed), false, 'a failed export leaves no file');
  });

  test('import refuses a qcow2 image, and --format qcow2 converts it with qemu-img', async () => {
    const q = join(dir, 'web.qcow2');
    execFileSync('qemu-img', ['convert', '-f', 'raw', '-O', 'qcow2', join(dir, 'web.img'), q]);
    const refused = await runCli(addr, ['vm', 'import', 'q', q]);
    assert.equal(refused.code, 65);
    assert.match(refused.stderr, /is a qcow2 image, not a raw disk: add --format qcow2/);
    const listed = await cliJson<{ name: string }[]>(addr, ['vm', 'list']);
    assert.equal(
      listed.some((v) => v.name === 'q'),
      false,
      'nothing was created',
    );
    await cliJson(addr, ['vm', 'import', 'q', q, '--format', 'qcow2']);
    const out = join(dir, 'q.img');
    await cliJson(addr, ['disk', 'export', 'q', '0', out]);
    assert.equal(sha(readFileSync(out)), sha(raw), 'the converted import holds the guest bytes');
  });
});
