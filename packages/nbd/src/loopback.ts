/**
 * Where plaintext NBD is allowed. NBD without TLS is unauthenticated and unencrypted, so a
 * TCP listener without TLS must be reachable from this host only: 127.0.0.0/8, ::1 (also
 * as ::ffff:127.x.x.x) or the name localhost. Any other name could resolve to a routable
 * address, so it counts as beyond loopback.
 */
import { isIPv4, isIPv6 } from 'node:net';

/** HOST and PORT of `HOST:PORT` (`[V6]:PORT` too), brackets removed. */
export function splitHostPort(hostPort: string): { readonly host: string; readonly port: number } {
  const i = hostPort.lastIndexOf(':');
  return { host: hostPort.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(hostPort.slice(i + 1)) };
}

/** Whether `host` (no port, no brackets) names the loopback interface only. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (!isIPv6(h)) return false;
  if (h.includes('.')) {
    // An IPv4-mapped address (::ffff:a.b.c.d): loopback when a.b.c.d is.
    const i = h.lastIndexOf(':');
    const groups = expandV6(`${h.slice(0, i + 1)}0:0`);
    const v4 = h.slice(i + 1);
    return groups !== undefined && groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff && isIPv4(v4) && v4.startsWith('127.');
  }
  // Every spelling of ::1: all groups zero but the last, which is 1.
  const groups = expandV6(h);
  return groups !== undefined && groups.slice(0, 7).every((g) => g === 0) && groups[7] === 1;
}

/** The eight 16-bit groups of a textual IPv6 address without an embedded IPv4 part. */
function expandV6(h: string): number[] | undefined {
  const [head = '', tail] = h.split('::');
  const parse = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const a = parse(head);
  const b = tail === undefined ? [] : parse(tail);
  const zeros = 8 - a.length - b.length;
  if (zeros < 0 || (tail === undefined && zeros !== 0)) return undefined;
  return [...a, ...new Array<number>(zeros).fill(0), ...b];
}
