import type { Command } from 'commander';
import { closestNames, InvalidArgumentError, isVmferryError } from '@vmferry/core';
import type { StorageNodeClient } from '@vmferry/grpc-edge';
import { fromFileError, reworded } from './failures.js';

export interface Globals {
  node: string;
  json: boolean;
}

export const globals = (cmd: Command): Globals => cmd.optsWithGlobals<Globals>();

/** HOST:PORT with an IPv6 host in brackets: without a port grpc-js would quietly try 443. */
const NODE_ADDRESS = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/;

/** `--node` as given, refused before connecting when it is not HOST:PORT. */
export function checkNodeAddress(node: string): string {
  if (NODE_ADDRESS.test(node)) return node;
  const hint = /^[A-Za-z0-9.-]+$/.test(node) ? `; the node listens on port 7400 by default: --node ${node}:7400` : '';
  throw new InvalidArgumentError(`--node '${node}' is not HOST:PORT${hint}`);
}

/** The node's words for a missing VM or snapshot: `vm 'x' not found`, `snapshot 'x@y' not found`. */
const MISSING_VM = /^vm '([^']+)' not found/;
const MISSING_SNAPSHOT = /^snapshot '([^'@]+)@([^']+)' not found/;

/** "; did you mean …?" for a VM or snapshot the node did not find, or '' when nothing is close. */
async function suggestion(client: StorageNodeClient, e: unknown): Promise<string> {
  if (!isVmferryError(e) || e.code !== 'not-found') return '';
  const { remoteFailure } = await import('@vmferry/grpc-edge');
  const details = remoteFailure(e)?.details ?? '';
  const vm = MISSING_VM.exec(details);
  if (vm?.[1]) {
    const close = closestNames(
      vm[1],
      (await client.listVms()).map((v) => v.name),
    );
    return close.length > 0 ? `; did you mean ${close.join(', ')}?` : '';
  }
  const snap = MISSING_SNAPSHOT.exec(details);
  if (snap?.[1] && snap[2]) {
    const labels = (await client.listSnapshots(snap[1])).flatMap((s) => (s.label ? [s.label] : []));
    const close = closestNames(snap[2], labels).map((l) => `${snap[1]}@${l}`);
    return close.length > 0 ? `; did you mean ${close.join(', ')}?` : '';
  }
  return '';
}

/**
 * Runs a client command: connects lazily (so `vmferry node` can start telemetry before
 * gRPC loads), prints errors the node sent in plain words (with a "did you mean" for a
 * misspelt VM or label), local file errors as sentences naming the file.
 */
export function withClient<A extends unknown[]>(fn: (client: StorageNodeClient, g: Globals, ...args: A) => Promise<void>) {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const g = globals(cmd);
    checkNodeAddress(g.node);
    const { connect, describeError } = await import('./client.js');
    const client = connect(g.node);
    try {
      await fn(client, g, ...args);
    } catch (e) {
      const local = fromFileError(e);
      if (local) throw local;
      const hint = await suggestion(client, e).catch(() => '');
      throw reworded(e, `${describeError(e, g.node)}${hint}`);
    } finally {
      client.close();
    }
  };
}
