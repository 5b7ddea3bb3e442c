import type { Command } from 'commander';
import type { StorageNodeClient } from '@vmferry/grpc-edge';
import { reworded } from './failures.js';

export interface Globals {
  node: string;
  json: boolean;
}

export const globals = (cmd: Command): Globals => cmd.optsWithGlobals<Globals>();

/**
 * Runs a client command: connects lazily (so `vmferry node` can start telemetry before
 * gRPC loads), prints errors the node sent in plain words, exits non-zero on failure.
 */
export function withClient<A extends unknown[]>(fn: (client: StorageNodeClient, g: Globals, ...args: A) => Promise<void>) {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const g = globals(cmd);
    const { connect, describeError } = await import('./client.js');
    const client = connect(g.node);
    try {
      await fn(client, g, ...args);
    } catch (e) {
      throw reworded(e, describeError(e, g.node));
    } finally {
      client.close();
    }
  };
}
