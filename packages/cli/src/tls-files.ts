import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '@vmferry/core';

export interface TlsFlags {
  certs?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
}

/**
 * Adds the TLS flags (--certs DIR, --tls-cert, --tls-key, --tls-ca) to `cmd`, in that order;
 * read them back as TlsFlags. `certsHelp` describes --certs (none: no description).
 */
export function withTlsFlags(cmd: Command, certsHelp?: string): Command {
  return cmd.option('--certs <dir>', certsHelp).option('--tls-cert <file>').option('--tls-key <file>').option('--tls-ca <file>');
}

/**
 * The files the TLS flags name for `site`: the three --tls-* flags when all are given, else
 * DIR/<site>.crt, DIR/<site>.key, DIR/ca.crt for --certs DIR, else whichever --tls-* were given.
 */
export function tlsFlagFiles(site: string, o: TlsFlags): Record<'tlsCert' | 'tlsKey' | 'tlsCa', string | undefined> {
  const explicit = o.tlsCert !== undefined && o.tlsKey !== undefined && o.tlsCa !== undefined;
  if (o.certs !== undefined && !explicit)
    return { tlsCert: join(o.certs, `${site}.crt`), tlsKey: join(o.certs, `${site}.key`), tlsCa: join(o.certs, 'ca.crt') };
  return { tlsCert: o.tlsCert, tlsKey: o.tlsKey, tlsCa: o.tlsCa };
}

/**
 * The replicating (target) site's TLS files: --tls-* or DIR/<site>.crt, DIR/<site>.key, DIR/ca.crt.
 * @throws InvalidArgumentError when the flags name neither.
 */
export function tlsFor(site: string, o: TlsFlags): { cert: string; key: string; ca: string } {
  const { tlsCert, tlsKey, tlsCa } = tlsFlagFiles(site, o);
  if (tlsCert && tlsKey && tlsCa) return { cert: tlsCert, key: tlsKey, ca: tlsCa };
  throw new InvalidArgumentError('replication needs TLS: --certs DIR (with SITE.crt, SITE.key, ca.crt) or --tls-cert/--tls-key/--tls-ca');
}
