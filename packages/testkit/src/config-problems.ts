import assert from 'node:assert/strict';
import { InvalidArgumentError } from '@vmferry/core';

/**
 * The problems a service's loadConfig reports for what `load` passes it: the lines after
 * "bad … configuration:", trimmed. Fails the test when the config is accepted or the error is
 * not an InvalidArgumentError.
 */
export function configProblems(load: () => unknown): string[] {
  try {
    load();
  } catch (e) {
    assert.ok(e instanceof InvalidArgumentError, String(e));
    return e.message
      .split('\n')
      .slice(1)
      .map((l) => l.trim());
  }
  return assert.fail('the configuration was accepted');
}
