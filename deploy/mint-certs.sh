#!/usr/bin/env bash
# Mints a CA and one certificate per site for vmferry replication (mTLS both ways).
# Usage: deploy/mint-certs.sh DIR SITE [SITE ...] [--days N]
# Writes DIR/ca.crt, DIR/ca.key and, per site, DIR/SITE.crt + DIR/SITE.key with subject
# CN=SITE and subjectAltName DNS:SITE (the identity peers check and allow-list).
# Keep ca.key offline; give each site only its own .crt/.key and ca.crt.
set -euo pipefail
dir=${1:?usage: mint-certs.sh DIR SITE [SITE ...] [--days N]}; shift
days=825
sites=()
while [ $# -gt 0 ]; do
  case "$1" in
    --days) days=$2; shift 2 ;;
    *) sites+=("$1"); shift ;;
  esac
done
[ ${#sites[@]} -gt 0 ] || { echo "name at least one site" >&2; exit 2; }
mkdir -p "$dir"
if [ ! -f "$dir/ca.key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=vmferry-ca" -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
fi
for site in "${sites[@]}"; do
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$site" \
    -keyout "$dir/$site.key" -out "$dir/$site.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$site" > "$dir/$site.ext"
  openssl x509 -req -in "$dir/$site.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial \
    -days "$days" -extfile "$dir/$site.ext" -out "$dir/$site.crt" 2>/dev/null
  rm -f "$dir/$site.csr" "$dir/$site.ext"
  chmod 600 "$dir/$site.key"
  echo "minted $dir/$site.crt (CN=$site, $days days)"
done
