#!/usr/bin/env node
// Runs the compiled test files (dist/**/test/**/*.test.js) with node's built-in runner.
//   node scripts/run-tests.mjs [--unit] [filter-substring]
// --unit: only the in-process tests (no node, nats-server or QEMU processes spawned): the
//   packages' own tests and files named *.unit.test.ts. `npm run test:unit`, < 1 minute.
// Files run VMFERRY_TEST_CONCURRENCY at a time (default: one per core). Every test binds
// port 0, works in its own temp folder and names its network namespaces uniquely, so files
// do not share anything but the CPU.
// --test-force-exit: a test file whose failed assertion left a child process running still
// exits once its tests are done, so one failure cannot hang the whole run.
import { readdirSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const args = process.argv.slice(2);
const unitOnly = args.includes('--unit');
const filter = args.find((a) => !a.startsWith('--'));

/** Tests that run in process: the pure core, the edge's codecs, the store on a temp RocksDB. */
const UNIT_DIRS = ['packages/core/', 'packages/grpc-edge/', 'packages/nbd/', 'packages/store-rocksdb/', 'packages/testkit/'];
const isUnit = (f) => UNIT_DIRS.some((d) => f.startsWith(d)) || f.endsWith('.unit.test.js');

const roots = ['packages', 'services', 'test'];
const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (p.includes(`dist${'/'}`) && p.endsWith('.test.js')) files.push(p);
  }
}
for (const r of roots) walk(r);
const selected = files.filter((f) => (!filter || f.includes(filter)) && (!unitOnly || isUnit(f))).sort();
if (selected.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
const concurrency = Number(process.env.VMFERRY_TEST_CONCURRENCY ?? availableParallelism());
const r = spawnSync(process.execPath, ['--test', `--test-concurrency=${concurrency}`, '--test-force-exit', '--test-reporter=spec', ...selected], {
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
