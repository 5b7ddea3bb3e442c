/**
 * The shipped alerting rules: `promtool check rules` (syntax, templates) and `promtool test
 * rules` (deploy/prometheus/rules.test.yml: each alert fires on the series it is for, at the
 * time its `for:` allows, and clears). Debian's promtool (package prometheus; scripts/setup.mjs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const DIR = join(__dirname, '..', '..', '..', 'deploy', 'prometheus');

function promtool(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', timeout: 60_000 });
  assert.ok(!r.error, `promtool could not run (apt-get install prometheus): ${r.error?.message ?? ''}`);
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('rules.yml is valid', () => {
  const r = promtool('check', 'rules', 'rules.yml');
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS: \d+ rules found/);
});

test('rules.test.yml: every alert fires and clears as specified', () => {
  const r = promtool('test', 'rules', 'rules.test.yml');
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS/);
});

test('the example scrape configuration is valid and loads the rules', () => {
  const r = promtool('check', 'config', 'prometheus.example.yml');
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /SUCCESS: 9 rules found/);
});
