#!/usr/bin/env node
// Runs every compiled test file (dist/**/test/**/*.test.js) with node's built-in runner.
// --test-force-exit: a test file whose failed assertion left a child process running still
// exits once its tests are done, so one failure cannot hang the whole run.
// Usage: node scripts/run-tests.mjs [filter-substring]
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

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
const filter = process.argv[2];
const selected = files.filter((f) => !filter || f.includes(filter)).sort();
if (selected.length === 0) {
  console.error('no test files found (did the build run?)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-force-exit', '--test-reporter=spec', ...selected], { stdio: 'inherit' });
process.exit(r.status ?? 1);
