/**
 * A real Linux guest runs from a vmferry clone: Debian's kernel and an initramfs built here
 * (static busybox, the virtio/ext4 modules, an /init script) boot under qemu-system-x86_64
 * (TCG) with the clone's vDisk as its virtio-blk root over NBD. The QEMU command line is the
 * gold VM's hypervisor config template, inherited by the clone and filled by `vm run-config`.
 * The guest reads a file from the gold image, writes a file, syncs, unmounts and powers off;
 * a snapshot of the clone then holds that file (read back with debugfs from an nbdcopy of
 * the snapshot's export), and the gold VM is unchanged.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliJson, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { removeDir, sha256, tempDir, type SnapshotJson } from './helpers.js';
import { mustRun } from './nbd-helpers.js';
import { debianKernel, modulesInOrder, writeInitramfs } from './guest-helpers.js';

const DISK_MIB = 32;
/** The guest's whole run, boot to power-off; TCG on a busy 2-core machine takes ~10-20 s. */
const GUEST_TIMEOUT_MS = 120_000;
const GOLD_TEXT = 'a file from the gold image\n';

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod "$m" || echo "vmferry-guest: insmod $m failed"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 /dev/vda /mnt || { echo 'vmferry-guest: mount failed'; poweroff -f; }
{ echo "written by the guest, kernel $(uname -r)"; cat /mnt/gold/hello.txt; } > /mnt/guest-wrote.txt
sync
umount /mnt
echo vmferry-guest: done
poweroff -f
`;

interface RunConfigJson {
  readonly vm: string;
  readonly uuid: string;
  readonly format: string;
  readonly config: string;
}

/** Runs the filled QEMU command line through sh (as `sh -c "$(vmferry vm run-config VM)"` would). */
function runGuest(commandLine: string): Promise<{ code: number | null; console: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `exec ${commandLine}`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the guest did not power off in ${GUEST_TIMEOUT_MS / 1000} s; its console:\n${out}`));
    }, GUEST_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, console: out, ms: Date.now() - started });
    });
  });
}

describe('a Linux guest boots from a vmferry clone over NBD', () => {
  let dir = '';
  let node: NodeProcess;
  let socket = '';

  before(async () => {
    dir = tempDir();
    socket = join(dir, 'nbd.sock');
    node = await startNodeProcess({ dataDir: join(dir, 'data'), extraArgs: ['--nbd-listen', '127.0.0.1:0', '--nbd-socket', socket] });
  });

  after(async () => {
    await node?.stop();
    removeDir(dir);
  });

  test('the guest writes a file to the clone; a snapshot of the clone holds it; gold is unchanged', async (t) => {
    const k = debianKernel();
    const modules = modulesInOrder(k.modules, ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4']);
    const initrd = join(dir, 'initrd.cpio');
    writeInitramfs(initrd, { modulesDir: k.modules, modules, init: INIT });

    const content = join(dir, 'content');
    mkdirSync(join(content, 'gold'), { recursive: true });
    writeFileSync(join(content, 'gold', 'hello.txt'), GOLD_TEXT);
    writeFileSync(join(content, 'gold', 'filler.bin'), Buffer.alloc(256 * 1024, 7));
    const image = join(dir, 'gold.img');
    await mustRun('mkfs.ext4', ['-q', '-F', '-d', content, image, `${DISK_MIB}M`]);
    const goldHash = sha256(readFileSync(image));

    const template = join(dir, 'qemu.tmpl');
    writeFileSync(
      template,
      `qemu-system-x86_64 -name {{name}} -uuid {{uuid}} -machine accel=tcg -cpu max -m 256 -smp 1 -nographic -no-reboot -nodefaults -serial stdio ` +
        `-kernel ${k.kernel} -initrd ${initrd} -append 'console=ttyS0 panic=-1 loglevel=4' {{disks}}\n`,
    );
    await cliJson(node.address, ['vm', 'import', 'gold', image, '--config', template]);
    await cliJson(node.address, ['snapshot', 'create', 'gold', '--label', 's1']);
    await cliJson(node.address, ['clone', 'gold@s1', 'desk']);

    const run = await cliJson<RunConfigJson>(node.address, ['vm', 'run-config', 'desk', '--nbd', 'unix']);
    assert.equal(run.format, 'qemu');
    assert.match(run.config, new RegExp(`-name desk -uuid ${run.uuid} `));
    assert.ok(run.config.includes(`-drive 'file=nbd+unix:///desk/0?socket=${socket},format=raw,if=virtio,cache=none'`), run.config);

    const guest = await runGuest(run.config.trim());
    t.diagnostic(`guest boot to power-off: ${guest.ms} ms (kernel ${k.version}, TCG)`);
    assert.equal(guest.code, 0, `qemu exit code; console:\n${guest.console}`);
    assert.match(guest.console, /vmferry-guest: done/, guest.console);

    const snap = await cliJson<SnapshotJson & { dirtyBlocks: number }>(node.address, ['snapshot', 'create', 'desk', '--label', 'after-boot']);
    assert.ok(snap.dirtyBlocks > 0, 'the guest wrote to the clone');
    const copy = join(dir, 'desk-after-boot.raw');
    await mustRun('nbdcopy', [`nbd+unix:///desk@after-boot/0?socket=${socket}`, copy]);
    const wrote = await mustRun('debugfs', ['-R', 'cat /guest-wrote.txt', copy]);
    assert.equal(wrote, `written by the guest, kernel ${k.version}\n${GOLD_TEXT}`);

    const goldCopy = join(dir, 'gold-after.raw');
    await mustRun('nbdcopy', [`nbd+unix:///gold@s1/0?socket=${socket}`, goldCopy]);
    assert.equal(sha256(readFileSync(goldCopy)), goldHash, 'the gold snapshot is unchanged');
    await mustRun('nbdcopy', [`nbd+unix:///gold/0?socket=${socket}`, goldCopy]);
    assert.equal(sha256(readFileSync(goldCopy)), goldHash, "the gold VM's live disk is unchanged");
  });
});
