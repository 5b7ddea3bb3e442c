import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VerifyReport } from '@vmferry/proto';
import { verifyReportToWire } from '../src/convert/reports.js';

test('a verify report crosses the wire with who references each corrupt and missing chunk', () => {
  const wire = verifyReportToWire({
    chunksChecked: 7,
    corrupt: [{ chunkId: 'aa', reason: 'content does not match its fingerprint', referencedBy: ['vm1@s1'] }],
    missing: [{ chunkId: 'bb', referencedBy: ['vm1', 'vm2@s3'] }],
  });
  const back = VerifyReport.decode(VerifyReport.encode(wire).finish());
  assert.deepEqual(back.missing, ['bb'], 'the bare ids stay for older clients');
  assert.deepEqual(back.missingChunks, [{ chunkId: 'bb', referencedBy: ['vm1', 'vm2@s3'] }]);
  assert.deepEqual(back.corrupt[0]?.referencedBy, ['vm1@s1']);
});
