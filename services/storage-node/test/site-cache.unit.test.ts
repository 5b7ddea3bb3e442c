/** The replication endpoint's peer list is cached for SITE_CACHE_MS, timed by an injected clock. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PermissionDeniedError, type SiteRecord } from '@vmferry/core';
import { ManualClock } from '@vmferry/testkit';
import { ReplicationSource, SITE_CACHE_MS } from '../src/replication-source.js';
import { tempEngine } from './engine-helpers.js';

const peer = (name: string): SiteRecord => ({
  name,
  replicationAddress: '127.0.0.1:7401',
  nodeAddress: '127.0.0.1:7400',
  identity: name,
  bindAddress: '',
  rate: '',
});

describe('replication endpoint site cache', () => {
  const t = tempEngine();

  test('a peer added here is refused until the cache expires, then served', async () => {
    const clock = new ManualClock();
    const source = new ReplicationSource(t.engine, clock);
    await t.engine.putSite(peer('east'));
    assert.equal(await source.authorize('east'), 'east');
    await t.engine.putSite(peer('west'));
    await assert.rejects(source.authorize('west'), PermissionDeniedError, 'still the cached list');
    await clock.advance(SITE_CACHE_MS);
    await assert.rejects(source.authorize('west'), PermissionDeniedError, 'not past the TTL yet');
    await clock.advance(1);
    assert.equal(await source.authorize('west'), 'west');
  });
});
