import { join } from 'node:path';
import { InvalidArgumentError } from '@vmferry/core';

/** The replicating (target) site's TLS files: --tls-* or DIR/<site>.crt, DIR/<site>.key, DIR/ca.crt. */
export function tlsFor(site: string, o: { certs?: string; tlsCert?: string; tlsKey?: string; tlsCa?: string }): { cert: string; key: string; ca: string } {
  if (o.tlsCert && o.tlsKey && o.tlsCa) return { cert: o.tlsCert, key: o.tlsKey, ca: o.tlsCa };
  if (o.certs) return { cert: join(o.certs, `${site}.crt`), key: join(o.certs, `${site}.key`), ca: join(o.certs, 'ca.crt') };
  throw new InvalidArgumentError('replication needs TLS: --certs DIR (with SITE.crt, SITE.key, ca.crt) or --tls-cert/--tls-key/--tls-ca');
}
