/**
 * Byte flips in each kind of RocksDB file of a stopped node (SST, blob, WAL, MANIFEST,
 * CURRENT), each on its own copy of one data directory. For every kind: the node refuses to
 * start with a message naming the data directory and the damage, or it starts, `verify`
 * exits 2 naming what is affected, and every export is either the bytes recorded before the
 * damage or DATA_LOSS: never different bytes.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { basename, join } from 'node:path';
import { cliJson, runCli, sha256File, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { exportHash, MiB, random, removeDir, tempDir, writeBytes, type SnapshotJson, type VerifyJson } from './helpers.js';
import { currentWal, filesOf, flipBytes } from './damage.js';

const KINDS: { kind: string; pick: (data: string) => string }[] = [
  { kind: 'SST', pick: (d) => filesOf(d, /\.sst$/)[0]?.path ?? '' },
  { kind: 'blob', pick: (d) => filesOf(d, /\.blob$/)[0]?.path ?? '' },
  { kind: 'WAL', pick: (d) => currentWal(d).path },
  { kind: 'MANIFEST', pick: (d) => filesOf(d, /^MANIFEST-/)[0]?.path ?? '' },
  { kind: 'CURRENT', pick: (d) => join(d, 'CURRENT') },
];

describe('byte flips in every kind of RocksDB file', () => {
  let dir = '';
  let built = '';
  let node: NodeProcess | undefined;
  /** ref → sha256 of its export before any damage. */
  const hashes = new Map<string, string>();

  before(async () => {
    dir = tempDir();
    built = join(dir, 'built');
    node = await startNodeProcess({ dataDir: built });
    for (const vm of ['a', 'b']) {
      await cliJson(node.address, ['vm', 'create', vm, '--disk', '4M', '--block-size', '16K']);
      // Random blocks (blob files) and nearly-empty ones (small records kept in the SST).
      const image = Buffer.concat([random(2 * MiB), Buffer.alloc(2 * MiB)]);
      for (let off = 2 * MiB; off < 4 * MiB; off += 16 * 1024) random(64).copy(image, off);
      assert.equal((await writeBytes(node.address, vm, 0, image, dir)).code, 0);
      const s = await cliJson<SnapshotJson>(node.address, ['snapshot', 'create', vm]);
      hashes.set(`${vm}@${s.id}`, await exportHash(node.address, `${vm}@${s.id}`, dir));
    }
    await node.stop(); // flushes: SST and blob files
    // One more durable commit that lives only in the WAL (the node is then killed, not stopped).
    node = await startNodeProcess({ dataDir: built });
    assert.equal((await writeBytes(node.address, 'a', 0, random(256 * 1024), dir)).code, 0);
    const s = await cliJson<SnapshotJson>(node.address, ['snapshot', 'create', 'a']);
    hashes.set(`a@${s.id}`, await exportHash(node.address, `a@${s.id}`, dir));
    await node.kill();
    node = undefined;
  });

  after(async () => {
    await node?.kill();
    removeDir(dir);
  });

  for (const { kind, pick } of KINDS) {
    test(`${kind}: refuses to start naming the damage, or verify exits 2 and exports are exact or DATA_LOSS`, async (t) => {
      const data = join(dir, kind);
      cpSync(built, data, { recursive: true });
      const file = pick(data);
      assert.ok(file, `the node has a ${kind} file`);
      if (kind === 'CURRENT') flipBytes(file, 10, 1);
      else flipBytes(file, Math.floor(currentSize(data, file) / 2), 32);

      const refused = await startNodeProcess({ dataDir: data }).then(
        (n) => ((node = n), undefined),
        (e: unknown) => e as Error,
      );
      if (refused) {
        t.diagnostic(`refused: ${refused.message.split('\n')[1] ?? ''}`);
        assert.match(refused.message, /exited with 1/);
        assert.ok(refused.message.includes(data), `names the data directory: ${refused.message}`);
        assert.match(refused.message, /damaged|corrupt/i, `says it is damage: ${refused.message}`);
        if (kind !== 'CURRENT') assert.ok(refused.message.includes(basename(file)), `names ${basename(file)}: ${refused.message}`);
        rmSync(data, { recursive: true, force: true });
        return;
      }
      const started = node as NodeProcess;
      // A failed assertion must not leave this node running: the test file would never exit.
      t.after(() => started.kill());
      const v = await runCli(started.address, ['--json', 'verify']);
      assert.equal(v.code, 2, `verify finds the ${kind} damage: ${v.stdout}${v.stderr}`);
      const report = JSON.parse(v.stdout) as VerifyJson;
      t.diagnostic(`started; verify: ${report.corrupt.map((c) => `${c.chunkId.slice(0, 16)} ${c.referencedBy.join(',')}: ${c.reason}`).join('; ')}`);
      // Who is affected: every snapshot that can no longer be read back is named by verify. (A
      // chunk under an unreadable tree node cannot be attributed itself; the node is.)
      const named = new Set([...report.corrupt, ...report.missing].flatMap((c) => (typeof c === 'string' ? [] : c.referencedBy)));
      for (const [ref, hash] of hashes) {
        const out = join(dir, `${kind}-export.img`);
        const e = await runCli(started.address, ['--json', 'disk', 'export', ref, '0', out]);
        if (e.code === 0) assert.equal(await sha256File(out), hash, `${ref} exported different bytes`);
        else {
          assert.match(e.stderr, /\(DATA_LOSS\)/, `${ref}: ${e.stderr}`);
          assert.ok(named.has(ref), `verify names ${ref}, which no longer reads back: ${v.stdout.slice(0, 2000)}`);
        }
        rmSync(out, { force: true });
      }
      await started.stop();
      node = undefined;
      rmSync(data, { recursive: true, force: true });
    });
  }
});

function currentSize(data: string, file: string): number {
  return filesOf(data, new RegExp(`^${basename(file).replace('.', '\\.')}$`))[0]?.size ?? 0;
}
