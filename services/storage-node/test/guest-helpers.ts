/**
 * Helpers for the guest boot test (not a test file): Debian's kernel from /boot, and an
 * initramfs built here, a cpio (newc) archive of a static busybox, the kernel modules a
 * virtio-blk ext4 root needs (from /lib/modules, in dependency order) and an /init script.
 * setup.mjs installs linux-image-amd64 and busybox-static; without them these helpers throw
 * saying so (the test fails rather than skip).
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SETUP_HINT = 'run `node scripts/setup.mjs test` as root (CI does): it installs linux-image-amd64 and busybox-static';

/** The newest /boot/vmlinuz-VERSION with its modules folder. */
export function debianKernel(): { readonly kernel: string; readonly version: string; readonly modules: string } {
  const versions = (existsSync('/boot') ? readdirSync('/boot') : [])
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(join('/lib/modules', v, 'modules.dep')))
    .sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const version = versions[versions.length - 1];
  if (!version) throw new Error(`no kernel in /boot (vmlinuz-* with /lib/modules/VERSION/modules.dep): ${SETUP_HINT}`);
  return { kernel: join('/boot', `vmlinuz-${version}`), version, modules: join('/lib/modules', version) };
}

/** A statically linked busybox (no ELF interpreter: it runs in an initramfs with no libc). */
export function staticBusybox(): Buffer {
  const path = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!path) throw new Error(`no busybox: ${SETUP_HINT}`);
  const elf = readFileSync(path);
  const phoff = Number(elf.readBigUInt64LE(32));
  const phentsize = elf.readUInt16LE(54);
  const phnum = elf.readUInt16LE(56);
  for (let i = 0; i < phnum; i++) {
    if (elf.readUInt32LE(phoff + i * phentsize) === 3) throw new Error(`${path} is dynamically linked (PT_INTERP): install busybox-static, not busybox`);
  }
  return elf;
}

/**
 * The module files (relative to `modulesDir`) that load `wanted` and what they depend on,
 * each after its dependencies; modules built into the kernel are left out.
 */
export function modulesInOrder(modulesDir: string, wanted: readonly string[]): string[] {
  const deps = new Map<string, string[]>();
  for (const line of readFileSync(join(modulesDir, 'modules.dep'), 'utf8').split('\n')) {
    const [mod, rest] = line.split(':');
    if (mod && rest !== undefined) deps.set(mod, rest.trim() === '' ? [] : rest.trim().split(/\s+/));
  }
  const builtin = readFileSync(join(modulesDir, 'modules.builtin'), 'utf8');
  const byName = new Map([...deps.keys()].map((m) => [(m.split('/').pop() ?? '').replace(/\.ko(\.\w+)?$/, '').replace(/-/g, '_'), m]));
  const order: string[] = [];
  const visit = (mod: string): void => {
    if (order.includes(mod)) return;
    for (const d of deps.get(mod) ?? []) visit(d);
    order.push(mod);
  };
  for (const name of wanted) {
    const mod = byName.get(name.replace(/-/g, '_'));
    if (mod) visit(mod);
    else if (!new RegExp(`/${name}\\.ko$`, 'm').test(builtin)) throw new Error(`kernel module ${name} is neither in ${modulesDir}/modules.dep nor built in`);
  }
  const compressed = order.find((m) => !m.endsWith('.ko'));
  if (compressed) throw new Error(`${compressed} is compressed; busybox insmod loads plain .ko files only`);
  return order;
}

interface CpioEntry {
  readonly name: string;
  /** File mode including the type bits (0o100000 file, 0o040000 folder). */
  readonly mode: number;
  readonly data?: Buffer;
}

/** A cpio archive in the newc format the kernel unpacks as an initramfs. */
export function cpioNewc(entries: readonly CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  const pad = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
  const add = (ino: number, e: CpioEntry): void => {
    const data = e.data ?? Buffer.alloc(0);
    const name = Buffer.from(`${e.name}\0`);
    const fields = [ino, e.mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, name.length, 0];
    const header = Buffer.from(`070701${fields.map((f) => f.toString(16).padStart(8, '0')).join('')}`);
    parts.push(header, name, pad(header.length + name.length), data, pad(data.length));
  };
  entries.forEach((e, i) => add(i + 1, e));
  add(0, { name: 'TRAILER!!!', mode: 0 });
  return Buffer.concat(parts);
}

/** Writes an initramfs: busybox as /bin/busybox, `modules` (relative paths) under /lib/modules, `init` as /init. */
export function writeInitramfs(path: string, o: { readonly modulesDir: string; readonly modules: readonly string[]; readonly init: string }): void {
  const dir = (name: string): CpioEntry => ({ name, mode: 0o040755 });
  const entries: CpioEntry[] = [dir('bin'), dir('dev'), dir('proc'), dir('sys'), dir('mnt'), dir('lib'), dir('lib/modules')];
  entries.push({ name: 'bin/busybox', mode: 0o100755, data: staticBusybox() });
  o.modules.forEach((m, i) =>
    entries.push({ name: `lib/modules/${String(i).padStart(2, '0')}-${m.split('/').pop() ?? m}`, mode: 0o100644, data: readFileSync(join(o.modulesDir, m)) }),
  );
  entries.push({ name: 'init', mode: 0o100755, data: Buffer.from(o.init) });
  writeFileSync(path, cpioNewc(entries));
}
