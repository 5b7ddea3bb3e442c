/**
 * TLS for the node's NBD listener, from the site's own files (--tls-cert, --tls-key,
 * --tls-ca: the ones the replication endpoint serves with).
 *
 * The model is the replication endpoint's: mutual TLS, and a certificate is an identity
 * (its CN), not a pass. A client must present a certificate that chains to the site CA,
 * and its CN must be this site's own name or one listed in --nbd-clients. Certificates of
 * peer sites chain to the same CA (deploy/mint-certs.sh mints one CA for all sites), and a
 * peer site reads only snapshots, through the allow-listed, read-only replication endpoint;
 * NBD opens live vDisks read-write, so a peer's certificate is refused here.
 */
import { readFile } from 'node:fs/promises';
import type { PeerCertificate } from 'node:tls';
import { FailedPreconditionError } from '@vmferry/core';
import type { NbdTls } from '@vmferry/nbd';

export interface NbdTlsFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly caFile: string;
}

/** The certificate's identity, as the replication endpoint reads it (subject CN). */
function identityOf(peer: PeerCertificate): string | undefined {
  // Typed wider than node says: nothing guarantees a subject CN, or only one.
  const cn: string | string[] | undefined = (peer.subject as { CN?: string | string[] } | undefined)?.CN;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** Reads the TLS files; rejects naming the file that cannot be read. */
export async function nbdTls(files: NbdTlsFiles, allowed: readonly string[]): Promise<NbdTls> {
  const read = (path: string, flag: string): Promise<Buffer> =>
    readFile(path).catch((e: unknown) => {
      throw new FailedPreconditionError(`NBD TLS: cannot read ${flag} ${path}: ${e instanceof Error ? e.message : String(e)}`);
    });
  const [cert, key, ca] = await Promise.all([read(files.certFile, '--tls-cert'), read(files.keyFile, '--tls-key'), read(files.caFile, '--tls-ca')]);
  const names = new Set(allowed);
  return {
    cert,
    key,
    ca,
    authorize: (peer) => {
      const who = identityOf(peer);
      if (who !== undefined && names.has(who)) return undefined;
      return `certificate ${who === undefined ? 'without a CN' : `CN=${who}`} may not use NBD on this node (allowed: ${[...names].join(', ')}; see --nbd-clients)`;
    },
  };
}
