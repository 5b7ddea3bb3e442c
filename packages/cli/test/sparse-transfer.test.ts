/*
 * A sparse image through the real CLI and a real node process: `vm import` of a 4 GiB file
 * holding a few MiB reads only those MiB (the CLI process's own read count, from
 * /proc/self/io at its exit), the export is byte-identical and as sparse, and `disk write`
 * of a sparse file over data leaves zeros where the file has holes. With SEEK_DATA turned
 * off the same import reads every byte: the count tells the two paths apart.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, fstatSync, ftruncateSync, mkdtempSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { cliJson, runCli, sha256File, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { dataExtents, seekData } from '../src/file-extents.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** A sparse file of `size` bytes with random data at each offset of `runs`. */
function sparseFile(path: string, size: number, runs: readonly { offset: number; length: number }[]): number {
  const fd = openSync(path, 'w');
  try {
    ftruncateSync(fd, size);
    for (const r of runs) writeSync(fd, randomBytes(r.length), 0, r.length, r.offset);
  } finally {
    closeSync(fd);
  }
  return runs.reduce((n, r) => n + r.length, 0);
}

/** `rchar` of /proc/<pid>/io: bytes the process got from read(2)-like calls, page cache included. */
function rchar(ioFile: string): number {
  const m = /^rchar: (\d+)$/m.exec(readFileSync(ioFile, 'utf8'));
  assert.ok(m, `no rchar in ${ioFile}`);
  return Number(m[1]);
}

/**
 * sha256 of a file's data extents with their offsets, as the kernel reports them: equal for
 * two files of one size means equal bytes, since the rest of each is a hole and reads as
 * zeros. Hashing all of a 4 GiB sparse file instead costs ~17 s of zero-filling here.
 */
function sparseHash(path: string): string {
  const BLOCK = 64 * 1024;
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const h = createHash('sha256').update(`size ${size}\n`);
    const buf = Buffer.allocUnsafe(BLOCK);
    let next = 0; // blocks before this one are hashed
    for (const e of dataExtents(fd, size, seekData())) {
      // Whole aligned blocks, so two files whose extents are cut differently hash alike.
      for (let at = Math.max(next, e.offset - (e.offset % BLOCK)); at < e.offset + e.length; at += BLOCK) {
        const n = readSync(fd, buf, 0, Math.min(BLOCK, size - at), at);
        const part = buf.subarray(0, n);
        // An all-zero block is hashed as a hole would be: a filesystem may keep zeros either way.
        if (!part.every((b) => b === 0)) h.update(`${at}\n`).update(part);
        next = at + BLOCK;
      }
    }
    return h.digest('hex');
  } finally {
    closeSync(fd);
  }
}

describe('sparse images through the CLI', { skip: process.platform !== 'linux' ? 'reads /proc/self/io' : false }, () => {
  let dir = '';
  let node: NodeProcess | undefined;
  let addr = '';
  let preload = '';

  /** Runs the CLI with --json; returns its document and the bytes it read, counted by the kernel. */
  async function measured(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ doc: Record<string, unknown>; read: number; seconds: number }> {
    const io = join(dir, `io-${Date.now()}-${Math.random()}`);
    const t0 = process.hrtime.bigint();
    const r = await runCli(addr, ['--json', ...args], { ...env, NODE_OPTIONS: `--require ${preload}`, VMFERRY_TEST_IO_OUT: io });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    assert.equal(r.code, 0, r.stderr);
    return { doc: JSON.parse(r.stdout) as Record<string, unknown>, read: rchar(io), seconds };
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-sparse-'));
    preload = join(dir, 'io-at-exit.cjs');
    // Written at exit, when all the reads are done: what the CLI process itself read.
    writeFileSync(
      preload,
      "process.on('exit', () => { const fs = require('node:fs'); fs.writeFileSync(process.env.VMFERRY_TEST_IO_OUT, fs.readFileSync('/proc/self/io')); });\n",
    );
    node = await startNodeProcess({ dataDir: join(dir, 'data') });
    addr = node.address;
  });

  after(async () => {
    await node?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('import of a 4 GiB image with 6 MiB of data reads the 6 MiB; the export is identical and sparse', { skip: seekData() === undefined }, async () => {
    const image = join(dir, 'big.img');
    const data = sparseFile(image, 4 * GiB, [
      { offset: 0, length: 1 * MiB },
      { offset: 1 * GiB + 12_288, length: 3 * MiB },
      { offset: 4 * GiB - 2 * MiB, length: 2 * MiB },
    ]);
    // What the CLI reads anyway (its own code, certificates, /proc): measured, not guessed.
    const idle = await measured(['vm', 'list']);
    const imp = await measured(['vm', 'import', 'big', image]);
    assert.equal(imp.doc['importedBytes'], 4 * GiB);
    const fileReads = imp.read - idle.read;
    assert.ok(fileReads < data + 8 * MiB, `import read ${fileReads} bytes beyond the CLI's own ${idle.read}, for ${data} bytes of data`);
    console.log(`import of 4 GiB sparse (${data} data bytes): ${fileReads} bytes read, ${imp.seconds.toFixed(2)} s`);

    const out = join(dir, 'big-export.img');
    const exp = await measured(['disk', 'export', 'big', '0', out]);
    assert.equal(exp.doc['size'], 4 * GiB);
    assert.equal(sparseHash(out), sparseHash(image));
    const st = statSync(out);
    assert.equal(st.size, 4 * GiB);
    assert.ok(st.blocks * 512 <= data + 16 * MiB, `export allocates ${st.blocks * 512} bytes for ${data} of data`);
    console.log(`export: ${String(exp.doc['dataBytes'])} data bytes, ${st.blocks * 512} allocated, ${exp.seconds.toFixed(2)} s`);
    rmSync(out);
    rmSync(image);
  });

  test('with SEEK_DATA off (the fallback), the same kind of import reads every byte and stores the same disk', async () => {
    const image = join(dir, 'fallback.img');
    sparseFile(image, 512 * MiB, [{ offset: 100 * MiB + 4096, length: 2 * MiB }]);
    const idle = await measured(['vm', 'list']);
    const imp = await measured(['vm', 'import', 'fallback', image], { VMFERRY_SEEK_DATA: 'off' });
    assert.ok(imp.read - idle.read >= 512 * MiB, `the fallback read ${imp.read - idle.read} bytes`);
    const out = join(dir, 'fallback-export.img');
    await cliJson(addr, ['disk', 'export', 'fallback', '0', out]);
    assert.equal(await sha256File(out), await sha256File(image));
    rmSync(out);
    rmSync(image);
  });

  test('disk write of a sparse file over data: the holes become zeros on the disk, unread', { skip: seekData() === undefined }, async () => {
    const full = join(dir, 'full.img');
    writeFileSync(full, randomBytes(64 * MiB));
    await cliJson(addr, ['vm', 'import', 'w', full]);
    const patch = join(dir, 'patch.img');
    const data = sparseFile(patch, 32 * MiB, [
      { offset: 0, length: 64 * 1024 },
      { offset: 20 * MiB, length: 1 * MiB },
    ]);
    const idle = await measured(['vm', 'list']);
    const w = await measured(['disk', 'write', 'w', '0', patch, '--offset', String(8 * MiB)]);
    assert.equal(w.doc['bytesWritten'], 32 * MiB);
    assert.ok(w.read - idle.read < data + 8 * MiB, `disk write read ${w.read - idle.read} bytes for ${data} of data`);

    const expected = readFileSync(full);
    readFileSync(patch).copy(expected, 8 * MiB);
    writeFileSync(full, expected);
    const out = join(dir, 'w-export.img');
    await cliJson(addr, ['disk', 'export', 'w', '0', out]);
    assert.equal(await sha256File(out), await sha256File(full));
  });
});
