#!/usr/bin/env node
// Installs what `npm test`, `npm run demo` and `npm run bench:node` need on a fresh Debian
// machine with Node 20: npm dependencies when missing, and Debian tools through apt-get
// when running as root (otherwise it names the packages to install). Only node built-ins.
import { execSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const purpose = process.argv[2] ?? 'test';
const tools = {
  test: {
    sfdisk: 'fdisk',
    'mkfs.ext4': 'e2fsprogs',
    'nats-server': 'nats-server',
    openssl: 'openssl',
    'qemu-system-x86_64': 'qemu-system-x86',
    ip: 'iproute2',
    tc: 'iproute2',
    'qemu-img': 'qemu-utils',
    'qemu-io': 'qemu-utils',
    nbdinfo: 'libnbd-bin',
    nbdcopy: 'libnbd-bin',
    fio: 'fio',
    debugfs: 'e2fsprogs',
    // The guest boot test: Debian's kernel (a file, not a command: see `have`) and a static busybox for its initramfs.
    '/boot/vmlinuz-*': 'linux-image-amd64',
    busybox: 'busybox-static',
    // vm run-config --libvirt / clone --libvirt (tests use libvirtd when it runs, else virsh's built-in test:///default).
    virsh: 'libvirt-clients',
    // The alert rules' unit tests (promtool) and the real Prometheus that scrapes a two-site run.
    promtool: 'prometheus',
    prometheus: 'prometheus',
    // File-level restore: the ESP (FAT) and GPT names in its test images; mkntfs for the NTFS probe.
    'mkfs.vfat': 'dosfstools',
    mcopy: 'mtools',
    sgdisk: 'gdisk',
    mkntfs: 'ntfs-3g',
    // The deploy kit test: systemd-analyze verify / security --offline of deploy/systemd.
    'systemd-analyze': 'systemd',
  },
  demo: {
    sfdisk: 'fdisk',
    'mkfs.ext4': 'e2fsprogs',
    'nats-server': 'nats-server',
    openssl: 'openssl',
    'qemu-img': 'qemu-utils',
    'qemu-io': 'qemu-utils',
    nbdcopy: 'libnbd-bin',
  },
  soak: {},
  nbd: { sfdisk: 'fdisk', 'mkfs.ext4': 'e2fsprogs', 'qemu-img': 'qemu-utils', 'qemu-nbd': 'qemu-utils', fio: 'fio' },
  bench: { sfdisk: 'fdisk', 'mkfs.ext4': 'e2fsprogs', debugfs: 'e2fsprogs', zstd: 'zstd', b3sum: 'b3sum', restic: 'restic' },
}[purpose];

// A command on PATH (or in sbin), or, for a name starting with '/', a file matching that glob.
const have = (cmd) =>
  spawnSync('sh', [
    '-c',
    cmd.startsWith('/') ? `for f in ${cmd}; do test -e "$f" && exit 0; done; exit 1` : `command -v ${cmd} || test -x /usr/sbin/${cmd} || test -x /sbin/${cmd}`,
  ]).status === 0;

const missing = Object.entries(tools)
  .filter(([cmd]) => !have(cmd))
  .map(([, pkg]) => pkg);
if (missing.length > 0) {
  const pkgs = [...new Set(missing)];
  if (process.getuid?.() === 0) {
    console.error(`setup: installing Debian packages: ${pkgs.join(' ')}`);
    execSync('apt-get update -qq', { stdio: 'inherit' });
    execSync(`DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkgs.join(' ')}`, { stdio: 'inherit' });
  } else {
    console.error(`setup: missing tools; install them with: sudo apt-get install -y ${pkgs.join(' ')}`);
    process.exit(1);
  }
}

if (!existsSync('node_modules/.package-lock.json') || !existsSync('node_modules/zstd-napi/build/Release')) {
  console.error('setup: installing npm dependencies (npm ci; zstd-napi compiles, ~1 min)');
  execSync('npm ci --no-audit --no-fund', { stdio: 'inherit' });
}
