/**
 * Guest disks for the file-level restore tests, made with the real tools: a content tree with
 * the shapes a restore must keep (modes, setuid, times, symlinks, nested folders, odd names,
 * a multi-MiB file), mkfs.ext4 -d of it, mkfs.vfat + mcopy for an EFI system partition, and
 * sfdisk/sgdisk partition tables.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, utimesSync, lutimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededBytes } from '@vmferry/testkit';

export const MiB = 1024 * 1024;
/** A fixed past time (2024-03-01 12:00:00 UTC) set on every file, so a restore that drops times is seen. */
export const FIXED_TIME_S = 1709294400;

const run = (cmd: string, args: readonly string[], input?: string): string =>
  execFileSync(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) }).toString();

/** A Debian-like tree: /etc, /usr/share/doc, /var/log, with the file shapes listed above. */
export function makeGuestTree(dir: string): void {
  const file = (rel: string, data: string | Buffer, mode = 0o644): void => {
    mkdirSync(join(dir, rel, '..'), { recursive: true });
    writeFileSync(join(dir, rel), data);
    chmodSync(join(dir, rel), mode);
  };
  file('etc/hostname', 'web-01\n');
  file('etc/fstab', 'UUID=0b7e5a52 / ext4 errors=remount-ro 0 1\n');
  file('etc/shadow', 'root:*:19000:0:99999:7:::\n', 0o640);
  file('etc/apt/sources.list.d/debian.sources', 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm\n');
  file('etc/ssh/sshd_config', '# sshd\nPermitRootLogin no\n'.repeat(200));
  file('etc/a name with spaces.conf', 'spaces\n');
  file('etc/naïve-ünïcode.conf', 'unicode\n');
  file('usr/lib/os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n');
  symlinkSync('../usr/lib/os-release', join(dir, 'etc/os-release'));
  file('usr/bin/sudo', seededBytes('sudo', 200_000), 0o4755);
  file('usr/share/doc/bash/README', 'bash readme\n'.repeat(500));
  for (let i = 0; i < 300; i++) file(`usr/share/doc/pkg-${String(i).padStart(3, '0')}/copyright`, `Copyright ${i}\n`.repeat(10 + i));
  file('usr/lib/x86_64-linux-gnu/libbig.so.1', seededBytes('libbig', 12 * MiB + 12345), 0o755);
  symlinkSync('libbig.so.1', join(dir, 'usr/lib/x86_64-linux-gnu/libbig.so'));
  file('var/log/syslog', Array.from({ length: 40_000 }, (_, i) => `Nov 25 10:00:${i % 60} web-01 kernel: event ${i}`).join('\n'));
  mkdirSync(join(dir, 'var/lib/private'), { recursive: true });
  chmodSync(join(dir, 'var/lib/private'), 0o700);
  mkdirSync(join(dir, 'tmp'));
  chmodSync(join(dir, 'tmp'), 0o1777);
  mkdirSync(join(dir, 'home/empty'), { recursive: true });
  // More folders than one ext2fs instance can list (it leaks heap per listing: ext-tree.ts).
  for (let i = 0; i < 1500; i++) file(`usr/share/locale/l${String(i).padStart(4, '0')}/LC_MESSAGES/app.mo`, `msg ${i}\n`);
  setTimes(dir);
}

/** Every entry's atime and mtime to FIXED_TIME_S plus a per-entry offset, depth first (children before their folder). */
function setTimes(dir: string, seq = { n: 0 }): void {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    const st = lstatSync(p);
    if (st.isDirectory()) setTimes(p, seq);
    const t = FIXED_TIME_S + seq.n++ * 61;
    if (st.isSymbolicLink()) lutimesSync(p, t, t);
    else utimesSync(p, t, t);
  }
}

export interface TreeFact {
  readonly type: 'file' | 'dir' | 'symlink';
  readonly mode: number;
  readonly mtimeS: number;
  readonly sha256?: string;
  readonly target?: string;
}

/** Path (relative) → what a faithful restore must reproduce. */
export function treeFacts(dir: string, rel = ''): Map<string, TreeFact> {
  const out = new Map<string, TreeFact>();
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const p = join(dir, r);
    const st = lstatSync(p);
    const base = { mode: st.mode & 0o7777, mtimeS: Math.floor(st.mtimeMs / 1000) };
    if (st.isSymbolicLink()) out.set(r, { type: 'symlink', ...base, mode: 0, target: readlinkSync(p) });
    else if (st.isDirectory()) {
      out.set(r, { type: 'dir', ...base });
      for (const [k, v] of treeFacts(dir, r)) out.set(k, v);
    } else out.set(r, { type: 'file', ...base, sha256: createHash('sha256').update(readFileSync(p)).digest('hex') });
  }
  return out;
}

export const LINUX_GUID = '0FC63DAF-8483-4772-8E79-3D69D8477DE4';
export const ESP_GUID = 'C12A7328-F81F-11D2-BA4B-00A0C93EC93B';

export interface GuestDisk {
  readonly image: string;
  /** Byte offset of the ext4 partition, for debugfs ('IMAGE?offset=N'). */
  readonly extOffset: number;
}

function mkfsExt4(fsFile: string, contentDir: string, kib: number): void {
  run('mkfs.ext4', ['-q', '-F', '-b', '4096', '-T', 'default', '-E', 'lazy_itable_init=0,lazy_journal_init=0', '-d', contentDir, fsFile, `${kib}k`]);
}

/**
 * GPT: partition 1 an EFI system partition (FAT32, /EFI/debian/grubx64.efi and a long name),
 * partition 2 a Linux ext4 filesystem of `contentDir`. Partition names set with sgdisk.
 */
export function buildGptDisk(work: string, contentDir: string, diskMiB: number): GuestDisk {
  mkdirSync(work, { recursive: true });
  const image = join(work, 'gpt.img');
  const espStart = 2048;
  const espSectors = 80 * 2048; // 80 MiB: large enough for mkfs.vfat -F 32
  const extStart = espStart + espSectors;
  const extSectors = diskMiB * 2048 - extStart - 2048;
  run('truncate', ['-s', `${diskMiB}M`, image]);
  run(
    'sfdisk',
    ['--quiet', '--no-reread', '--no-tell-kernel', image],
    `label: gpt\nstart=${espStart}, size=${espSectors}, type=${ESP_GUID}\nstart=${extStart}, size=${extSectors}, type=${LINUX_GUID}\n`,
  );
  run('sgdisk', ['-c', '1:EFI system', '-c', '2:debian-root', image]);
  const esp = join(work, 'esp.fat');
  run('mkfs.vfat', ['-F', '32', '-n', 'EFI', '-C', esp, String(espSectors / 2)]);
  writeFileSync(join(work, 'grubx64.efi'), seededBytes('grub', 1_500_000));
  writeFileSync(join(work, 'long.txt'), 'a long file name on FAT\n');
  run('mmd', ['-i', esp, '::EFI', '::EFI/debian']);
  run('mcopy', ['-m', '-i', esp, join(work, 'grubx64.efi'), '::EFI/debian/grubx64.efi']);
  run('mcopy', ['-i', esp, join(work, 'long.txt'), '::EFI/debian/A Long File Name.txt']);
  run('dd', [`if=${esp}`, `of=${image}`, 'bs=512', `seek=${espStart}`, 'conv=notrunc,sparse', 'status=none']);
  const fs = join(work, 'root.ext4');
  mkfsExt4(fs, contentDir, (extSectors * 512) / 1024);
  run('dd', [`if=${fs}`, `of=${image}`, 'bs=1M', `seek=${extStart * 512}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
  return { image, extOffset: extStart * 512 };
}

/** MBR (dos): one Linux (83) ext4 partition at sector 2048 and a swap (82) partition after it. */
export function buildMbrDisk(work: string, contentDir: string, diskMiB: number): GuestDisk {
  mkdirSync(work, { recursive: true });
  const image = join(work, 'mbr.img');
  const start = 2048;
  const swapSectors = 8 * 2048;
  const extSectors = diskMiB * 2048 - start - swapSectors;
  run('truncate', ['-s', `${diskMiB}M`, image]);
  run(
    'sfdisk',
    ['--quiet', '--no-reread', '--no-tell-kernel', image],
    `label: dos\nstart=${start}, size=${extSectors}, type=83\nstart=${start + extSectors}, size=${swapSectors}, type=82\n`,
  );
  const fs = join(work, 'mbr-root.ext4');
  mkfsExt4(fs, contentDir, (extSectors * 512) / 1024);
  run('dd', [`if=${fs}`, `of=${image}`, 'bs=1M', `seek=${start * 512}`, 'oflag=seek_bytes', 'conv=notrunc,sparse', 'status=none']);
  return { image, extOffset: start * 512 };
}

/** `debugfs -R CMD IMAGE?offset=N` (stdout only). */
export function debugfs(disk: GuestDisk, cmd: string): string {
  return run('debugfs', ['-R', cmd, `${disk.image}?offset=${disk.extOffset}`]);
}

/** Names in a directory as `debugfs ls -p` lists them (without '.' and '..'). */
export function debugfsNames(disk: GuestDisk, dir: string): { name: string; mode: number; size: number }[] {
  return debugfs(disk, `ls -p ${dir}`)
    .split('\n')
    .filter((l) => l.startsWith('/'))
    .map((l) => l.split('/'))
    .map((f) => ({ name: f[5] ?? '', mode: parseInt(f[2] ?? '0', 8), size: Number(f[6] ?? 0) }))
    .filter((e) => e.name !== '.' && e.name !== '..')
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
