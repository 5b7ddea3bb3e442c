/*
 * A TCP proxy that delays every byte by a fixed one-way latency in each direction: a WAN
 * round trip on loopback (this kernel has no netem). Order is kept; reading pauses while
 * more than `maxQueuedBytes` wait, so the proxy adds latency, not unbounded buffering.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface DelayProxy {
  readonly address: string;
  /** Bytes forwarded client → server and server → client. */
  readonly stats: { up: number; down: number };
  close(): Promise<void>;
}

function pipeDelayed(from: Socket, to: Socket, delayMs: number, maxQueuedBytes: number, count: (n: number) => void): void {
  const queue: { at: number; data: Buffer }[] = [];
  let queued = 0;
  let timer: NodeJS.Timeout | undefined;
  const drain = (): void => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && (queue[0] as { at: number }).at <= now) {
      const item = queue.shift() as { at: number; data: Buffer };
      queued -= item.data.length;
      count(item.data.length);
      to.write(item.data);
    }
    if (queued < maxQueuedBytes && from.isPaused()) from.resume();
    if (queue.length > 0) timer = setTimeout(drain, Math.max(0, (queue[0] as { at: number }).at - performance.now()));
  };
  from.on('data', (data: Buffer) => {
    queue.push({ at: performance.now() + delayMs, data });
    queued += data.length;
    if (queued >= maxQueuedBytes) from.pause();
    timer ??= setTimeout(drain, delayMs);
  });
  from.on('end', () => {
    const finish = (): void => {
      if (queue.length > 0) setTimeout(finish, delayMs);
      else to.end();
    };
    finish();
  });
}

export async function startDelayProxy(target: { host: string; port: number }, oneWayDelayMs: number, maxQueuedBytes = 64 * 1024 * 1024): Promise<DelayProxy> {
  const stats = { up: 0, down: 0 };
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    pipeDelayed(client, upstream, oneWayDelayMs, maxQueuedBytes, (n) => (stats.up += n));
    pipeDelayed(upstream, client, oneWayDelayMs, maxQueuedBytes, (n) => (stats.down += n));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    address: `127.0.0.1:${port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
