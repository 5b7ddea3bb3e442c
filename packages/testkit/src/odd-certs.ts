/** Certificates that should be refused, for tests of how refusals are reported. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Mints `dir/SITE.crt` + `.key` (CN and DNS name SITE) signed by the CA in `dir` (ca.crt,
 * ca.key), valid from `notBefore` to `notAfter` (`YYYYMMDDHHMMSSZ`). `openssl x509 -req`
 * takes only a day count from now (OpenSSL 3.0), so a certificate that is not yet valid
 * needs `openssl ca` with a throw-away database.
 */
export function mintCertWithDates(dir: string, site: string, notBefore: string, notAfter: string): void {
  const work = mkdtempSync(join(tmpdir(), 'vmferry-ca-'));
  try {
    writeFileSync(join(work, 'index.txt'), '');
    // A random serial: two certificates from one CA must not share one.
    writeFileSync(join(work, 'serial'), `${randomBytes(8).toString('hex')}\n`);
    writeFileSync(
      join(work, 'ca.cnf'),
      [
        '[ca]',
        'default_ca = d',
        '[d]',
        `database = ${join(work, 'index.txt')}`,
        `new_certs_dir = ${work}`,
        `serial = ${join(work, 'serial')}`,
        `certificate = ${join(dir, 'ca.crt')}`,
        `private_key = ${join(dir, 'ca.key')}`,
        'default_md = sha256',
        'policy = p',
        'copy_extensions = none',
        'unique_subject = no',
        '[p]',
        'commonName = supplied',
        '[x]',
        `subjectAltName = DNS:${site}`,
        'extendedKeyUsage = serverAuth,clientAuth',
        '',
      ].join('\n'),
    );
    const key = join(dir, `${site}.key`);
    const csr = join(work, `${site}.csr`);
    execFileSync('openssl', ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${site}`, '-keyout', key, '-out', csr], {
      stdio: 'ignore',
    });
    execFileSync(
      'openssl',
      [
        'ca',
        '-batch',
        '-config',
        join(work, 'ca.cnf'),
        '-extensions',
        'x',
        '-startdate',
        notBefore,
        '-enddate',
        notAfter,
        '-in',
        csr,
        '-out',
        join(dir, `${site}.crt`),
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
