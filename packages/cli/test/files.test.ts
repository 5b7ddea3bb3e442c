/*
 * File-level restore against a real node process: guest disks made with mkfs.ext4 -d,
 * mkfs.vfat + mcopy, sfdisk and sgdisk are imported, then browsed and copied out with
 * `vmferry files` (reading through the node, never exporting), and compared with the source
 * tree and with what debugfs reads from the same image.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { buildGptDisk, buildMbrDisk, debugfs, debugfsNames, ESP_GUID, LINUX_GUID, makeGuestTree, MiB, treeFacts, type GuestDisk } from './files-images.js';

interface LsJson {
  partition: { number: number; filesystem: string; kind: string };
  entries: { name: string; path: string; type: string; mode: number; size: number; uid: number; mtimeMs: number; target?: string }[];
  stats: { bytesFetched: number; milliseconds: number };
}
interface GetJson {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  dest: string;
  stats: { bytesFetched: number };
}

const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

describe('vmferry files on real guest disks', () => {
  let dir = '';
  let tree = '';
  let gpt: GuestDisk;
  let mbr: GuestDisk;
  let node: NodeProcess | undefined;
  let addr = '';
  const out = (name: string): string => join(dir, 'out', name);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vmferry-files-'));
    tree = join(dir, 'tree');
    makeGuestTree(tree);
    mkdirSync(join(dir, 'out'));
    gpt = buildGptDisk(join(dir, 'work'), tree, 256);
    mbr = buildMbrDisk(join(dir, 'work'), tree, 96);
    node = await startNodeProcess({ dataDir: join(dir, 'data') });
    addr = node.address;
    await cliJson(addr, ['vm', 'import', 'web', gpt.image]);
    await cliJson(addr, ['snapshot', 'create', 'web', '--label', 's1']);
    await cliJson(addr, ['vm', 'import', 'db', mbr.image]);
    await cliJson(addr, ['snapshot', 'create', 'db', '--label', 's1']);
  });

  after(async () => {
    await node?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('partitions: the GPT and MBR tables with kinds, types and the filesystem in each', async () => {
    const g = await cliJson<{ scheme: string; partitions: { number: number; kind: string; type: string; filesystem: string; name: string }[] }>(addr, [
      'files',
      'partitions',
      'web@s1',
    ]);
    assert.equal(g.scheme, 'gpt');
    assert.deepEqual(
      g.partitions.map((p) => [p.number, p.kind, p.type, p.filesystem, p.name]),
      [
        [1, 'efi', ESP_GUID, 'fat', 'EFI system'],
        [2, 'linux', LINUX_GUID, 'ext', 'debian-root'],
      ],
    );
    const m = await cliJson<{ scheme: string; partitions: { number: number; kind: string; filesystem: string }[] }>(addr, ['files', 'partitions', 'db@s1:0']);
    assert.equal(m.scheme, 'mbr');
    assert.deepEqual(
      m.partitions.map((p) => [p.number, p.kind]),
      [
        [1, 'linux'],
        [2, 'swap'],
      ],
    );
  });

  test('ls /etc and /usr/share/doc: the same names, modes and sizes as debugfs reads from the image', async () => {
    for (const [ref, disk] of [
      ['web@s1', gpt],
      ['db@s1', mbr],
    ] as const) {
      for (const path of ['/etc', '/usr/share/doc', '/var/log', '/']) {
        const ls = await cliJson<LsJson>(addr, ['files', 'ls', ref, path]);
        assert.equal(ls.partition.filesystem, 'ext', `${ref} opens the ext4 partition by default`);
        const ours = ls.entries.map((e) => ({ name: e.name, mode: e.mode, size: e.size }));
        // debugfs ls -p prints 0 as a directory's size.
        const ours2 = ours.map((e, i) => (ls.entries[i]?.type === 'dir' ? { ...e, size: 0 } : e));
        const theirs = debugfsNames(disk, path).map((e) => ({ name: e.name, mode: e.mode & 0o7777, size: e.size }));
        assert.deepEqual(ours2, theirs, `${ref} ${path}`);
      }
    }
    const etc = await cliJson<LsJson>(addr, ['files', 'ls', 'web@s1', '/etc']);
    const link = etc.entries.find((e) => e.name === 'os-release');
    assert.equal(link?.type, 'symlink');
    assert.equal(link?.target, '../usr/lib/os-release');
    const table = await runCli(addr, ['files', 'ls', 'web@s1', '/usr/bin', '--long']);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /-rwsr-xr-x\s+0\s+0\s+200000\s+2024-\d\d-\d\d .*sudo/);
  });

  test('get one file: byte-identical to the source and to debugfs dump; read from the node ≤ 2 × its size + metadata', async () => {
    const path = '/usr/lib/x86_64-linux-gnu/libbig.so.1';
    const size = statSync(join(tree, path)).size;
    const r = await cliJson<GetJson>(addr, ['files', 'get', 'web@s1', path, out('libbig')]);
    assert.equal(r.files, 1);
    assert.equal(r.bytes, size);
    assert.equal(sha(out('libbig')), sha(join(tree, path)));
    debugfs(gpt, `dump ${path} ${out('libbig.debugfs')}`);
    assert.equal(sha(out('libbig')), sha(out('libbig.debugfs')));
    assert.ok(r.stats.bytesFetched <= 2 * size + 1 * MiB, `read ${r.stats.bytesFetched} bytes from the node for a ${size}-byte file`);
    assert.equal(statSync(out('libbig')).mode & 0o7777, 0o755);
    assert.equal(Math.floor(statSync(out('libbig')).mtimeMs / 1000), Math.floor(statSync(join(tree, path)).mtimeMs / 1000));

    const small = await cliJson<GetJson>(addr, ['files', 'get', 'db@s1', '/etc/hostname', out('hostname')]);
    assert.equal(readFileSync(out('hostname'), 'utf8'), 'web-01\n');
    assert.ok(small.stats.bytesFetched < 1 * MiB, `a 7-byte file read ${small.stats.bytesFetched} bytes`);
  });

  test('get a directory tree: every file, mode, time and symlink as in the source', async () => {
    for (const sub of ['etc', 'usr', 'var', 'tmp', 'home']) {
      const r = await cliJson<GetJson>(addr, ['files', 'get', 'web@s1', `/${sub}`, out(`tree-${sub}`)]);
      assert.ok(r.files + r.dirs + r.symlinks > 0);
      if (sub === 'usr') assert.ok(r.dirs > 3000, `/usr has ${r.dirs} folders: more than one ext2fs instance lists`);
      assert.deepEqual(treeFacts(out(`tree-${sub}`)), treeFacts(join(tree, sub)), `/${sub}`);
      const top = statSync(out(`tree-${sub}`));
      assert.equal(top.mode & 0o7777, statSync(join(tree, sub)).mode & 0o7777);
    }
    // An existing folder as DEST receives the entry by its name.
    mkdirSync(out('into'));
    await cliJson(addr, ['files', 'get', 'db@s1', '/etc/apt', out('into')]);
    assert.deepEqual(treeFacts(join(out('into'), 'apt')), treeFacts(join(tree, 'etc', 'apt')));
  });

  test('get never overwrites: an existing file is refused by name and left as it was', async () => {
    const r = await runCli(addr, ['files', 'get', 'web@s1', '/etc/fstab', out('hostname')]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /hostname' exists/);
    assert.equal(readFileSync(out('hostname'), 'utf8'), 'web-01\n');
  });

  test('the EFI system partition (FAT32): list and copy out, long names included', async () => {
    const ls = await cliJson<LsJson>(addr, ['files', 'ls', 'web@s1', '/EFI/debian', '--partition', '1']);
    assert.equal(ls.partition.filesystem, 'fat');
    assert.deepEqual(
      ls.entries.map((e) => [e.name, e.size]),
      [
        ['A Long File Name.txt', 24],
        // mcopy stores an all-lower-case 8.3 name upper case with the NT case flag, which fatfs does not read (Linux shows grubx64.efi).
        ['GRUBX64.EFI', 1_500_000],
      ],
    );
    await cliJson(addr, ['files', 'get', 'web@s1', '/EFI', out('efi'), '--partition', '1']);
    assert.equal(sha(join(out('efi'), 'DEBIAN', 'GRUBX64.EFI')), sha(join(dir, 'work', 'grubx64.efi')));
    assert.equal(readFileSync(join(out('efi'), 'DEBIAN', 'A Long File Name.txt'), 'utf8'), 'a long file name on FAT\n');
    // FAT names are case-insensitive: the name Linux shows finds the file.
    await cliJson(addr, ['files', 'get', 'web@s1', '/EFI/debian/grubx64.efi', out('grub'), '--partition', '1']);
    assert.equal(sha(out('grub')), sha(join(dir, 'work', 'grubx64.efi')));
  });

  test('find: names by glob, whole paths with a slash, by type', async () => {
    const byName = await cliJson<{ matches: { path: string }[] }>(addr, ['files', 'find', 'web@s1', '*.conf']);
    assert.deepEqual(byName.matches.map((m) => m.path).sort(), ['/etc/a name with spaces.conf', '/etc/naïve-ünïcode.conf']);
    const byPath = await cliJson<{ matches: { path: string }[] }>(addr, ['files', 'find', 'web@s1', '/usr/share/doc/pkg-29*/*']);
    assert.deepEqual(
      byPath.matches.map((m) => m.path),
      Array.from({ length: 10 }, (_, i) => `/usr/share/doc/pkg-29${i}/copyright`),
    );
    const links = await cliJson<{ matches: { path: string }[] }>(addr, ['files', 'find', 'web@s1', '*', '--type', 'l']);
    assert.deepEqual(links.matches.map((m) => m.path).sort(), ['/etc/os-release', '/usr/lib/x86_64-linux-gnu/libbig.so']);
    const limited = await cliJson<{ matches: unknown[]; truncated: boolean }>(addr, ['files', 'find', 'db@s1', 'copyright', '--limit', '5']);
    assert.equal(limited.matches.length, 5);
    assert.equal(limited.truncated, true);
  });

  test('live state and a clone are browsed the same way', async () => {
    const live = await cliJson<LsJson>(addr, ['files', 'ls', 'web', '/etc']);
    const snap = await cliJson<LsJson>(addr, ['files', 'ls', 'web@s1', '/etc']);
    assert.deepEqual(live.entries, snap.entries);
    await cliJson(addr, ['clone', 'web@s1', 'web-clone']);
    await cliJson(addr, ['files', 'get', 'web-clone', '/usr/bin/sudo', out('sudo')]);
    assert.equal(sha(out('sudo')), sha(join(tree, 'usr/bin/sudo')));
    assert.equal(statSync(out('sudo')).mode & 0o7777, 0o4755);
  });

  test('bad input: a missing path is NOT_FOUND by name; a bad partition or vDisk lists what exists', async () => {
    const missing = await runCli(addr, ['files', 'ls', 'web@s1', '/etc/nope']);
    assert.notEqual(missing.code, 0);
    assert.match(missing.stderr, /no such file or directory '\/etc\/nope' in web@s1 vDisk 0 partition 2/);
    const through = await runCli(addr, ['files', 'get', 'web@s1', '/etc/hostname/x', out('x')]);
    assert.match(through.stderr, /'\/etc\/hostname\/x'/);
    const part = await runCli(addr, ['files', 'ls', 'web@s1', '/', '--partition', '7']);
    assert.match(part.stderr, /has no partition 7; found: 1 efi .* fat; 2 linux .* ext/);
    const swap = await runCli(addr, ['files', 'ls', 'db@s1', '/', '--partition', '2']);
    assert.match(swap.stderr, /partition 2 holds no filesystem vmferry can read; partitions found: 1 linux .* ext; 2 swap/);
    const disk = await runCli(addr, ['files', 'ls', 'web@s1:3', '/']);
    assert.match(disk.stderr, /web@s1 has no vDisk 3/);
    const ref = await runCli(addr, ['files', 'ls', 'web@@s1', '/']);
    assert.match(ref.stderr, /malformed reference 'web@@s1/);
    const snapshot = await runCli(addr, ['files', 'ls', 'web@nosuch', '/']);
    assert.match(snapshot.stderr, /nosuch/);
    assert.ok(!(await runCli(addr, ['files', 'get', 'web@s1', '/etc/nope', out('nope')])).stderr.includes('exists'));
    assert.throws(() => statSync(out('nope')), 'a failed get creates nothing');
  });

  test('a vDisk without a filesystem, and a corrupt superblock: clear errors, and the node keeps serving', async () => {
    await cliJson(addr, ['vm', 'create', 'blank', '--disk', '16M']);
    const blank = await runCli(addr, ['files', 'ls', 'blank', '/']);
    assert.notEqual(blank.code, 0);
    assert.match(blank.stderr, /blank vDisk 0 holds no filesystem vmferry can read; partitions found: whole disk 16.0 MiB no known filesystem/);

    const broken = join(dir, 'work', 'broken.img');
    copyFileSync(mbr.image, broken);
    const fd = openSync(broken, 'r+');
    const sb = mbr.extOffset + 1024;
    writeSync(fd, Buffer.from([0xff, 0xff, 0, 0]), 0, 4, sb + 24); // s_log_block_size: a 2^(10+65535)-byte block
    writeSync(fd, Buffer.alloc(4), 0, 4, sb + 32); // s_blocks_per_group = 0
    closeSync(fd);
    await cliJson(addr, ['vm', 'import', 'broken', broken]);
    const r = await runCli(addr, ['files', 'ls', 'broken', '/etc']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot open the ext filesystem of broken vDisk 0 partition 1: it looks damaged/);
    assert.ok(r.stderr.length < 500, `a short message, not a dump: ${r.stderr.length} characters`);
    assert.equal(node?.child.exitCode, null, 'the node is still running');
    const vms = await cliJson<{ name: string }[]>(addr, ['vm', 'list']);
    assert.ok(vms.some((v) => v.name === 'broken'));
  });

  test('an LVM-only disk: no partition opened, the error says LVM is not supported', async () => {
    const lvm = join(dir, 'work', 'lvm.img');
    execFileSync('truncate', ['-s', '32M', lvm]);
    execFileSync('sfdisk', ['--quiet', '--no-reread', '--no-tell-kernel', lvm], { input: 'label: dos\nstart=2048, type=8e\n' });
    const fd = openSync(lvm, 'r+');
    writeSync(fd, Buffer.from('LABELONE', 'latin1'), 0, 8, 2048 * 512 + 512); // an LVM2 physical volume label
    closeSync(fd);
    await cliJson(addr, ['vm', 'import', 'lvm', lvm]);
    const r = await runCli(addr, ['files', 'ls', 'lvm', '/']);
    assert.notEqual(r.code, 0);
    assert.match(
      r.stderr,
      /lvm vDisk 0 has no Linux, Windows or EFI data partition to open; found: 1 lvm \(type 8e\) .* lvm .*LVM physical volumes are not supported/,
    );
  });

  test('an ext4 filesystem too large for ext2fs (400 GiB, no partition table): RESOURCE_EXHAUSTED saying so', async () => {
    const big = join(dir, 'work', 'big.img');
    execFileSync('truncate', ['-s', '400G', big]);
    execFileSync('mkfs.ext4', ['-q', '-F', '-b', '4096', '-O', '^has_journal', big]);
    await cliJson(addr, ['vm', 'import', 'bigdisk', big]);
    rmSync(big);
    const r = await runCli(addr, ['files', 'ls', 'bigdisk', '/']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /the ext filesystem of bigdisk vDisk 0 does not fit ext2fs's fixed 16 MiB WebAssembly heap/);
    assert.equal(node?.child.exitCode, null, 'the node is still running');
  });
});
