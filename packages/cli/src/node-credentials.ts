/**
 * The CLI's credentials for a node API that requires them (the node's --api-token-file or
 * --api-tls): global options, each with its env var, read once per command. The same
 * credentials go to every node a command dials (the --node one, and peers reached through
 * their site record in replicate and failover).
 */
import { readFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { InvalidArgumentError } from '@vmferry/core';
import type { NodeCredentials } from '@vmferry/grpc-edge';

interface CredentialFlags {
  nodeTokenFile?: string;
  nodeTlsCert?: string;
  nodeTlsKey?: string;
  nodeTlsCa?: string;
  nodeTlsName?: string;
}

/** Adds the global credential options to `program`. */
export function addNodeCredentialOptions(program: Command): void {
  program
    .addOption(new Option('--node-token-file <file>', "file holding the node API's bearer token (the node's --api-token-file)").env('VMFERRY_NODE_TOKEN_FILE'))
    .addOption(new Option('--node-tls-cert <file>', 'client certificate (PEM) for a node API with --api-tls').env('VMFERRY_NODE_TLS_CERT'))
    .addOption(new Option('--node-tls-key <file>', "that certificate's private key (PEM)").env('VMFERRY_NODE_TLS_KEY'))
    .addOption(new Option('--node-tls-ca <file>', "the CA the node's certificate chains to (PEM)").env('VMFERRY_NODE_TLS_CA'))
    .addOption(
      new Option('--node-tls-name <name>', "the name the node's certificate carries (default: the host in --node; mint-certs.sh names it after the site)").env(
        'VMFERRY_NODE_TLS_NAME',
      ),
    );
}

function readFlagFile(flag: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new InvalidArgumentError(`${flag} ${file}: cannot read it (${why})`, { cause: e });
  }
}

/**
 * The credentials the global options name (none given: an empty object, plaintext).
 * @throws InvalidArgumentError naming the flag for an unreadable or empty file, or a partial TLS set.
 */
export function nodeCredentialsOf(cmd: Command): NodeCredentials {
  const o = cmd.optsWithGlobals<CredentialFlags>();
  const out: { token?: string; tls?: NonNullable<NodeCredentials['tls']> } = {};
  if (o.nodeTokenFile !== undefined) {
    const token = readFlagFile('--node-token-file', o.nodeTokenFile).toString('utf8').trim();
    if (token === '') throw new InvalidArgumentError(`--node-token-file ${o.nodeTokenFile} is empty`);
    out.token = token;
  }
  const files = [o.nodeTlsCert, o.nodeTlsKey, o.nodeTlsCa];
  const given = files.filter((f) => f !== undefined).length;
  if (given > 0 && given < 3) throw new InvalidArgumentError('give all three of --node-tls-cert, --node-tls-key, --node-tls-ca, or none');
  if (o.nodeTlsCert !== undefined && o.nodeTlsKey !== undefined && o.nodeTlsCa !== undefined) {
    out.tls = {
      cert: readFlagFile('--node-tls-cert', o.nodeTlsCert),
      key: readFlagFile('--node-tls-key', o.nodeTlsKey),
      ca: readFlagFile('--node-tls-ca', o.nodeTlsCa),
      ...(o.nodeTlsName === undefined ? {} : { serverName: o.nodeTlsName }),
    };
  }
  return out;
}
