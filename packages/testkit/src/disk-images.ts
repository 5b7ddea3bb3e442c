/**
 * Real disk images built with real tools: sfdisk writes the partition table, mkfs.ext4 -d
 * fills an ext4 filesystem from a folder, dd places it at the partition's sector.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ExtImageOptions {
  /** Output raw image path. */
  readonly path: string;
  /** Whole disk size in MiB. */
  readonly diskMiB: number;
  /** First sector of the single Linux partition (2048 aligned, 63 legacy). */
  readonly startSector: number;
  /** Folder copied into the filesystem (mkfs.ext4 -d). */
  readonly contentDir: string;
  /** Label type: dos (MBR) or gpt. */
  readonly label?: 'dos' | 'gpt';
  /** Scratch folder for the filesystem image. */
  readonly workDir: string;
}

const run = (cmd: string, args: string[], input?: string): void => {
  execFileSync(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], ...(input === undefined ? {} : { input }) });
};

/**
 * Builds a partitioned disk with one ext4 partition. The filesystem is made once per
 * (content, size) with a fixed UUID and hash seed, so images at different start sectors
 * carry byte-identical filesystems.
 */
export function buildExtImage(o: ExtImageOptions): void {
  const sectors = (o.diskMiB * 1024 * 1024) / 512;
  // Same partition size whatever the start sector, so the filesystems are byte-identical.
  const partSectors = sectors - 2048 - 34 - 2048;
  const fs = join(o.workDir, `fs-${partSectors}.ext4`);
  mkdirSync(o.workDir, { recursive: true });
  run('truncate', ['-s', '0', o.path]);
  run('truncate', ['-s', `${o.diskMiB}M`, o.path]);
  run(
    'sfdisk',
    ['--quiet', '--no-reread', '--no-tell-kernel', o.path],
    `label: ${o.label ?? 'dos'}\nstart=${o.startSector}, size=${partSectors}, type=${o.label === 'gpt' ? '0FC63DAF-8483-4772-8E79-3D69D8477DE4' : '83'}\n`,
  );
  run('rm', ['-f', fs]);
  run(
    'mkfs.ext4',
    [
      '-q',
      '-F',
      '-U',
      '0b7e5a52-8f9e-4a3c-9c1e-1d2b3c4d5e6f',
      '-E',
      'hash_seed=6f0b4d7e-1a2b-4c3d-8e9f-a0b1c2d3e4f5,lazy_itable_init=0,lazy_journal_init=0',
      '-T',
      'default',
      '-d',
      o.contentDir,
      fs,
      `${Math.floor((partSectors * 512) / 1024)}k`,
    ],
    undefined,
  );
  run('dd', [`if=${fs}`, `of=${o.path}`, 'bs=512', `seek=${o.startSector}`, 'conv=notrunc,sparse', 'status=none']);
}

/** A folder of realistic-looking files: text, compressible logs and incompressible blobs. */
export function makeContentTree(dir: string, seed: string, mib = 24): void {
  mkdirSync(join(dir, 'etc'), { recursive: true });
  mkdirSync(join(dir, 'var', 'log'), { recursive: true });
  mkdirSync(join(dir, 'usr', 'lib'), { recursive: true });
  let state = createHash('sha256').update(seed).digest();
  const random = (n: number): Buffer => {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      state = createHash('sha256').update(state).digest();
      parts.push(state);
      have += state.length;
    }
    return Buffer.concat(parts).subarray(0, n);
  };
  for (let i = 0; i < 50; i++) writeFileSync(join(dir, 'etc', `conf-${i}.conf`), `# config ${i}\nkey=${i}\nname=${seed}-${i}\n`.repeat(20));
  const logLines: string[] = [];
  for (let i = 0; i < 60000; i++)
    logLines.push(`2026-11-25T10:${String(i % 60).padStart(2, '0')}:00 host kernel: event ${i} seed ${seed} value ${(i * 7919) % 10007}`);
  writeFileSync(join(dir, 'var', 'log', 'syslog'), logLines.join('\n'));
  const blobs = Math.max(1, Math.floor(mib / 4));
  for (let i = 0; i < blobs; i++) writeFileSync(join(dir, 'usr', 'lib', `lib${i}.so`), random(2 * 1024 * 1024));
  for (let i = 0; i < blobs; i++) writeFileSync(join(dir, 'usr', 'lib', `data${i}.txt`), Buffer.from(logLines.slice(i * 1000, i * 1000 + 15000).join('\n')));
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 4 * 1024 * 1024 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
