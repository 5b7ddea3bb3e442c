#!/usr/bin/env bash
# Installs a built vmferry worktree as a release under PREFIX, for the systemd units in
# deploy/systemd (which run PREFIX/bin/vmferry, never npx).
#
# Usage (from a worktree after `npm ci && npm run build`, as root for the default paths):
#   deploy/install.sh [--prefix /opt/vmferry] [--unit-dir /etc/systemd/system] [--no-units] [--no-users]
#
# What it does:
#   PREFIX/releases/VERSION/   the runtime packages (package.json + compiled dist/src of each)
#                              and their production node_modules (dev tools pruned)
#   PREFIX/current             a symlink to that release (switched last: an upgrade is atomic,
#                              and the previous release stays for a rollback)
#   PREFIX/bin/vmferry         runs PREFIX/current/packages/cli/bin/vmferry.js with the Node
#                              found at install time (Node >= 20)
#   UNIT-DIR/vmferry-*.service the units from deploy/systemd, with /opt/vmferry replaced by PREFIX
#   users vmferry and vmferry-nats (system users, no shell, no home), when run as root
# Nothing is started or enabled: see docs/runbook.md.
set -euo pipefail

prefix=/opt/vmferry
unit_dir=/etc/systemd/system
units=yes
users=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix=$2; shift 2 ;;
    --unit-dir) unit_dir=$2; shift 2 ;;
    --no-units) units=no; shift ;;
    --no-users) users=no; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "install.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
node_bin=$(command -v node) || { echo "install.sh: node not found on PATH (Node >= 20 is needed)" >&2; exit 1; }
major=$("$node_bin" -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "install.sh: Node $major found; vmferry needs Node >= 20" >&2; exit 1; }
[ -f "$repo/packages/cli/dist/src/main.js" ] && [ -d "$repo/node_modules" ] \
  || { echo "install.sh: $repo is not built: run 'npm ci && npm run build' there first" >&2; exit 1; }

# The workspaces a running site needs (not the tests, benchmarks or test kit).
runtime=(packages/core packages/proto packages/grpc-edge packages/nats packages/nbd packages/store-rocksdb
         packages/telemetry packages/cli services/storage-node services/replicator services/scheduler)

version=$("$node_bin" -p "require('$repo/package.json').version")
rev=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo local)
release="$prefix/releases/$version-$rev"
stage="$release.partial"
rm -rf "$stage"
mkdir -p "$stage"

for ws in "${runtime[@]}"; do
  mkdir -p "$stage/$ws/dist"
  cp "$repo/$ws/package.json" "$stage/$ws/"
  cp -R "$repo/$ws/dist/src" "$stage/$ws/dist/src"
  [ -d "$repo/$ws/bin" ] && cp -R "$repo/$ws/bin" "$stage/$ws/"
done
cp -R "$repo/docs" "$repo/README.md" "$stage/"
# A root manifest naming only the runtime workspaces, and no devDependencies anywhere (the
# test kit is not installed): prune then drops the dev tools and everything else unused.
"$node_bin" -e '
  const fs = require("fs");
  const [repo, stage, ...workspaces] = process.argv.slice(1);
  const root = require(repo + "/package.json");
  const write = (file, json) => fs.writeFileSync(file, JSON.stringify(json, null, 2) + "\n");
  write(stage + "/package.json", { name: root.name, version: root.version, private: true, license: root.license, engines: root.engines, workspaces });
  for (const ws of workspaces) {
    const pkg = JSON.parse(fs.readFileSync(stage + "/" + ws + "/package.json", "utf8"));
    delete pkg.devDependencies;
    write(stage + "/" + ws + "/package.json", pkg);
  }
' "$repo" "$stage" "${runtime[@]}"
cp "$repo/package-lock.json" "$stage/"
cp -R "$repo/node_modules" "$stage/node_modules"
# Workspace links of the packages left out would dangle.
for link in "$stage"/node_modules/@vmferry/*; do [ -e "$link" ] || rm -f "$link"; done
# Offline: every package is in the copied tree already (native addons keep their built binaries).
out=$(cd "$stage" && npm prune --omit=dev --no-audit --no-fund --offline 2>&1) || { echo "$out" >&2; echo "install.sh: npm prune failed" >&2; exit 1; }

rm -rf "$release"
mv "$stage" "$release"
mkdir -p "$prefix/bin"
cat > "$prefix/bin/vmferry" <<EOF
#!/bin/sh
# Installed by deploy/install.sh from $repo ($version-$rev).
exec "$node_bin" "$prefix/current/packages/cli/bin/vmferry.js" "\$@"
EOF
chmod 755 "$prefix/bin/vmferry"
ln -sfn "$release" "$prefix/current.new"
mv -T "$prefix/current.new" "$prefix/current"
echo "installed vmferry $version-$rev in $release; $prefix/current points to it; run $prefix/bin/vmferry"

if [ "$users" = yes ] && [ "$(id -u)" = 0 ]; then
  for u in vmferry vmferry-nats; do
    id -u "$u" >/dev/null 2>&1 || useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$u"
  done
  echo "system users vmferry and vmferry-nats are present"
fi

if [ "$units" = yes ]; then
  mkdir -p "$unit_dir"
  for unit in "$repo"/deploy/systemd/*.service; do
    sed "s#/opt/vmferry#$prefix#g" "$unit" > "$unit_dir/$(basename "$unit")"
  done
  echo "units written to $unit_dir (systemctl daemon-reload; configure /etc/vmferry, then enable them: docs/runbook.md)"
fi
