/*
 * The short soak of issue 7 (about 30 s of load): clients write, snapshot, clone, restore,
 * delete and import VMs through the CLI while gc and verify loop and the node is SIGKILLed
 * at random moments. Nothing the CLI reported as done may be lost, and the soak must have
 * actually done work (operations, kills, checks), or it proves nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatReport, runSoak } from '@vmferry/loadtest/soak';

const SECONDS = 30;

test(`soak: ${SECONDS} s of clients, gc, verify and SIGKILLs lose nothing reported`, { timeout: 300_000 }, async () => {
  const seed = Number(process.env['VMFERRY_SOAK_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
  // Kills 2.75–7.25 s after each restart, each after at least one operation done, so a
  // 30 s run sees several even when CLI calls take seconds (a loaded CI machine).
  const report = await runSoak({ seconds: SECONDS, clients: 3, killEveryMs: 5000, minOpsPerKill: 1, seed });
  const summary = formatReport(report);
  console.log(summary);
  const ops = Object.values(report.operations).reduce((a, b) => a + b, 0);
  const checks = Object.values(report.checks).reduce((a, b) => a + b, 0);
  assert.deepEqual(report.losses, [], `losses (seed ${seed}):\n${summary}`);
  // kills counts the last one before the final check too.
  assert.ok(report.kills >= 3, `only ${report.kills} kills`);
  assert.ok(ops >= 6, `only ${ops} operations were reported done`);
  assert.ok(checks >= 10, `only ${checks} checks were made`);
  assert.ok(report.gc.runs >= 2, `gc ran only ${report.gc.runs} times`);
});
