/*
 * The management API's credentials from the node's config: the token file read and checked
 * (readable, not empty, long enough, not readable by other users), the TLS files and the
 * certificate names allowed. Start-up fails with a sentence naming the flag and the file
 * rather than serving an API that anyone could call.
 */
import { readFile, stat } from 'node:fs/promises';
import { InvalidArgumentError } from '@vmferry/core';
import type { ApiAuthOptions } from '@vmferry/grpc-edge';
import type { NodeConfig } from './config.js';

/** A shorter token is refused: guessable. `openssl rand -hex 32` makes a 64-character one. */
export const MIN_TOKEN_LENGTH = 16;

async function readToken(file: string): Promise<string> {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`--api-token-file ${file}: ${why}`);
  };
  const info = await stat(file).catch((e: unknown) => fail((e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message));
  // Like ssh with a private key: a secret others can read is no secret.
  if ((info.mode & 0o077) !== 0) fail(`readable by other users (mode ${(info.mode & 0o777).toString(8)}): chmod 600 it`);
  const token = (await readFile(file, 'utf8')).trim();
  if (token.length < MIN_TOKEN_LENGTH) fail(`the token is ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} (e.g. openssl rand -hex 32 > ${file})`);
  if (/\s/.test(token)) fail('the token contains white space (one line, no spaces)');
  return token;
}

/** The API's authentication as the config asks for it ({}: none, a loopback listener). */
export async function apiAuthFrom(config: NodeConfig): Promise<ApiAuthOptions> {
  const token = config.apiTokenFile === undefined ? undefined : await readToken(config.apiTokenFile);
  const tls =
    config.apiTls === true && config.tlsCert && config.tlsKey && config.tlsCa
      ? { certFile: config.tlsCert, keyFile: config.tlsKey, caFile: config.tlsCa, allowedIdentities: [config.site, ...(config.apiClients?.split(',') ?? [])] }
      : undefined;
  return { ...(token === undefined ? {} : { token }), ...(tls ? { tls } : {}) };
}

/** " (mTLS: certificates siteA, admin; bearer token)" for the listening line. */
export function describeApiAuth(auth: ApiAuthOptions): string {
  const parts = [...(auth.tls ? [`mTLS, certificates ${auth.tls.allowedIdentities.join(', ')}`] : []), ...(auth.token !== undefined ? ['bearer token'] : [])];
  return parts.length === 0 ? ' (plaintext, no authentication: loopback)' : ` (${parts.join('; ')})`;
}
