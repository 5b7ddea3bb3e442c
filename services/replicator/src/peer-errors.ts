/*
 * What went wrong between two sites' certificates, in words that say which and what to do,
 * instead of "cannot reach … (UNAVAILABLE)".
 *
 * grpc-js reports a failed TLS handshake as UNAVAILABLE with the OpenSSL reason in its
 * details when *we* refused the peer's certificate. When the *peer* refused ours, the
 * client sees only "read ECONNRESET" or "Failed to connect" (the endpoint closes the socket
 * without an alert we can read, with TLS 1.3 and 1.2 alike), so the reason is found by checking our own certificate the
 * way the peer would: its dates, and whether our CA signed it (sites share one CA).
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isVmferryError, VmferryError } from '@vmferry/core';
import { remoteFailure, type TlsFiles } from '@vmferry/grpc-edge';

/** Who is talking to whom: `local` pulls from `peer`, expecting certificate identity `identity`. */
export interface PeerContext {
  readonly peer: string;
  readonly local: string;
  readonly identity: string;
  readonly tls: TlsFiles;
  readonly now?: Date;
}

function refused(message: string, retryable = false): VmferryError {
  return new VmferryError('permission-denied', message, { retryable });
}

function readCert(file: string): X509Certificate | undefined {
  try {
    return new X509Certificate(readFileSync(file));
  } catch {
    return undefined;
  }
}

/** Why the peer would refuse our certificate, judged locally; undefined when it looks fine. */
function ownCertificateProblem(c: PeerContext): string | undefined {
  const cert = readCert(c.tls.cert);
  if (!cert) return undefined;
  const now = c.now ?? new Date();
  const mine = `site ${c.local}'s certificate (${c.tls.cert})`;
  if (new Date(cert.validTo) < now) return `${mine} expired on ${cert.validTo}: mint a new one (deploy/mint-certs.sh) and use it`;
  if (new Date(cert.validFrom) > now) return `${mine} is not valid until ${cert.validFrom}: check this host's clock and ${c.peer}'s, or mint one valid now`;
  const ca = readCert(c.tls.ca);
  if (ca && !cert.checkIssued(ca)) {
    return `${mine} is not signed by the CA in ${c.tls.ca} that the sites share (it comes from another CA): use a certificate minted with that CA`;
  }
  return undefined;
}

/**
 * A VmferryError (permission-denied, not retryable: trying again changes nothing) naming the
 * certificate problem behind a failed call from `c.local` to `c.peer`'s replication endpoint,
 * or undefined when the failure is not about certificates.
 */
export function explainPeerFailure(e: unknown, c: PeerContext): VmferryError | undefined {
  // Only a call's failure, as the peer or the TLS layer reported it: errors made here say their own cause.
  const remote = remoteFailure(e);
  if (!remote || !isVmferryError(e)) return undefined;
  const details = remote.details;
  if (e.code === 'permission-denied') {
    const cn = readCert(c.tls.cert)?.subject.match(/CN=([^\n,]+)/)?.[1] ?? c.local;
    return refused(
      `site ${c.peer} does not allow site ${c.local}: ${details} (PERMISSION_DENIED). On site ${c.peer}: vmferry site add ${c.local} --identity ${cn}`,
    );
  }
  if (e.code !== 'unavailable') return undefined;
  const theirs = `site ${c.peer}'s certificate`;
  if (/certificate has expired/i.test(details)) {
    return refused(`${theirs} has expired (refused by ${c.local}): ${c.peer} must be given a new certificate`);
  }
  if (/certificate is not yet valid/i.test(details)) {
    return refused(`${theirs} is not valid yet (refused by ${c.local}): check the clocks of ${c.peer} and ${c.local}, or the certificate's start date`);
  }
  if (/self[- ]signed certificate|unable to get local issuer certificate|unable to verify the first certificate|certificate signature failure/i.test(details)) {
    return refused(`${theirs} is not signed by the CA ${c.local} trusts (${c.tls.ca}): the two sites' certificates come from different CAs`);
  }
  if (/ERR_TLS_CERT_ALTNAME_INVALID|does not match certificate's altnames/i.test(details)) {
    const names = /cert's altnames: (.*?)\.?(?: Resolution note|$)/.exec(details)?.[1] ?? 'other names';
    return refused(`${theirs} is for ${names}, not for identity '${c.identity}' recorded here: fix it with vmferry site add ${c.peer} --identity NAME`);
  }
  // The peer's refusal reaches us as a reset or just "Failed to connect": if our own
  // certificate is one the peer must refuse, that is the cause worth naming (even if the
  // peer is also down, the certificate has to be replaced).
  const own = ownCertificateProblem(c);
  if (own) return refused(`site ${c.peer} refused the TLS handshake: ${own}`);
  return undefined;
}
