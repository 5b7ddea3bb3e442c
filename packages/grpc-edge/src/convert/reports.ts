/** The node's reports (space, verify) as wire messages. */
import type { NodeStats, VerifyReport } from '@vmferry/core';
import type { Stats, VerifyReport as WireVerifyReport } from '@vmferry/proto';

export function statsToWire(s: NodeStats): Stats {
  return { ...s, vms: s.vms.map((v) => ({ ...v })) };
}

/** `missing` keeps the bare ids for older clients; `missingChunks` adds who references each. */
export function verifyReportToWire(r: VerifyReport): WireVerifyReport {
  return {
    chunksChecked: r.chunksChecked,
    corrupt: r.corrupt.map((c) => ({ chunkId: c.chunkId, reason: c.reason, referencedBy: [...c.referencedBy] })),
    missing: r.missing.map((m) => m.chunkId),
    missingChunks: r.missing.map((m) => ({ chunkId: m.chunkId, referencedBy: [...m.referencedBy] })),
  };
}
