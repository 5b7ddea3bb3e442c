/*
 * Two sites in Linux network namespaces, joined by two veth links, as in a real DR pair:
 *
 *   site A (ns <p>a)                          site B (ns <p>b)
 *   <p>am 10.77.1.1/24  ── management ──   <p>bm 10.77.1.2/24
 *   <p>ar 10.77.2.1/24  ── replication ──  <p>br 10.77.2.2/24
 *   lo    10.77.9.1/32  (A's replication service address, reachable over either link)
 *
 * In B, 10.77.9.1 routes over the management link by default; policy routing sends traffic
 * *from* 10.77.2.2 over the replication link. So only a replicator that binds its source
 * address to 10.77.2.2 uses the replication NIC: the interface counters tell which it did.
 * Needs root and iproute2; throws (never skips) when namespaces cannot be made.
 */
import { execFileSync } from 'node:child_process';

export interface TwoSiteNet {
  readonly nsA: string;
  readonly nsB: string;
  readonly mgmtA: string;
  readonly mgmtB: string;
  readonly replA: string;
  readonly replB: string;
  /** Command prefixes that run a program inside each namespace. */
  readonly inA: readonly string[];
  readonly inB: readonly string[];
  readonly addr: { readonly aMgmt: string; readonly bMgmt: string; readonly aRepl: string; readonly bRepl: string; readonly aService: string };
  /** Bytes received by an interface in B (from /sys/class/net/IF/statistics). */
  rxBytesB(ifname: string): number;
  /** Limits A→B bandwidth on the replication link with tc tbf (e.g. '80mbit'). */
  shapeReplication(rate: string): void;
  destroy(): void;
}

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export function createTwoSiteNet(prefix = `vf${process.pid % 10000}`): TwoSiteNet {
  const nsA = `${prefix}a`;
  const nsB = `${prefix}b`;
  const [mgmtA, mgmtB, replA, replB] = [`${prefix}am`, `${prefix}bm`, `${prefix}ar`, `${prefix}br`];
  const inA = ['ip', 'netns', 'exec', nsA];
  const inB = ['ip', 'netns', 'exec', nsB];
  const run = (ns: string, ...args: string[]): string => ip('netns', 'exec', ns, 'ip', ...args);
  const destroy = (): void => {
    for (const ns of [nsA, nsB]) {
      try {
        ip('netns', 'del', ns);
      } catch {
        // already gone
      }
    }
  };
  destroy();
  try {
    ip('netns', 'add', nsA);
    ip('netns', 'add', nsB);
    ip('link', 'add', mgmtA, 'netns', nsA, 'type', 'veth', 'peer', 'name', mgmtB, 'netns', nsB);
    ip('link', 'add', replA, 'netns', nsA, 'type', 'veth', 'peer', 'name', replB, 'netns', nsB);
    run(nsA, 'addr', 'add', '10.77.1.1/24', 'dev', mgmtA);
    run(nsA, 'addr', 'add', '10.77.2.1/24', 'dev', replA);
    run(nsA, 'addr', 'add', '10.77.9.1/32', 'dev', 'lo');
    run(nsB, 'addr', 'add', '10.77.1.2/24', 'dev', mgmtB);
    run(nsB, 'addr', 'add', '10.77.2.2/24', 'dev', replB);
    for (const [ns, ifs] of [
      [nsA, [mgmtA, replA, 'lo']],
      [nsB, [mgmtB, replB, 'lo']],
    ] as const) {
      for (const i of ifs) run(ns, 'link', 'set', i, 'up');
    }
    // B reaches A's service address over management unless the source is B's replication address.
    run(nsB, 'route', 'add', '10.77.9.1/32', 'via', '10.77.1.1', 'dev', mgmtB);
    run(nsB, 'rule', 'add', 'from', '10.77.2.2', 'table', '100');
    run(nsB, 'route', 'add', '10.77.9.1/32', 'via', '10.77.2.1', 'dev', replB, 'table', '100');
  } catch (e) {
    destroy();
    throw new Error(`cannot build the two-site network namespaces (needs root and iproute2): ${(e as Error).message}`);
  }
  return {
    nsA,
    nsB,
    mgmtA,
    mgmtB,
    replA,
    replB,
    inA,
    inB,
    addr: { aMgmt: '10.77.1.1', bMgmt: '10.77.1.2', aRepl: '10.77.2.1', bRepl: '10.77.2.2', aService: '10.77.9.1' },
    rxBytesB: (ifname) =>
      Number(execFileSync('ip', ['netns', 'exec', nsB, 'cat', `/sys/class/net/${ifname}/statistics/rx_bytes`], { encoding: 'utf8' }).trim()),
    shapeReplication: (rate) => {
      execFileSync('ip', ['netns', 'exec', nsA, 'tc', 'qdisc', 'replace', 'dev', replA, 'root', 'tbf', 'rate', rate, 'burst', '64kb', 'latency', '400ms']);
    },
    destroy,
  };
}
