/**
 * A real Linux guest runs from a vmferry clone: Debian's kernel and an initramfs built here
 * (static busybox, the virtio/ext4 modules, an /init script) boot under qemu-system-x86_64
 * (TCG) with the clone's vDisk as its virtio-blk root over NBD. The QEMU command line is the
 * gold VM's hypervisor config template, inherited by the clone and filled by `vm run-config`.
 * The guest reads a file from the gold image, writes a file, syncs and waits on its console:
 * meanwhile a VM-consistent snapshot is taken through the QMP adapter (the template's per-VM
 * -qmp socket, vCPUs paused while the node snapshots). Then the guest unmounts and powers off;
 * snapshots of the clone hold the file (read back with debugfs from an nbdcopy of each
 * snapshot's export), and the gold VM is unchanged.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliJson, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { removeDir, sha256, tempDir, type SnapshotJson } from './helpers.js';
import { mustRun, tool } from './nbd-helpers.js';
import { debianKernel, modulesInOrder, writeInitramfs } from './guest-helpers.js';
import { loadQuiescers, qmpCommand, withQuiesce } from '../src/quiesce.js';

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
echo 'vmferry-guest: ready'
read -r go
echo "vmferry-guest: $go"
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

/**
 * Runs the filled QEMU command line through sh (as `sh -c "$(vmferry vm run-config VM)"` would).
 * When the guest prints 'ready', runs `whileWaiting`, then answers on its serial console.
 */
function runGuest(commandLine: string, whileWaiting: () => Promise<void>): Promise<{ code: number | null; console: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn('sh', ['-c', `exec ${commandLine}`], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let answered = false;
    const fail = (e: unknown): void => {
      child.kill('SIGKILL');
      reject(new Error(`${e instanceof Error ? e.message : String(e)}\nthe guest's console:\n${out}`, { cause: e }));
    };
    const onData = (d: Buffer): void => {
      out += d.toString();
      if (answered || !out.includes('vmferry-guest: ready')) return;
      answered = true;
      whileWaiting().then(() => child.stdin.write('go on\n'), fail);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    const timer = setTimeout(() => fail(new Error(`the guest did not power off in ${GUEST_TIMEOUT_MS / 1000} s`)), GUEST_TIMEOUT_MS);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, console: out, ms: Date.now() - started });
    });
  });
}

/** `file` as the guest left it in vDisk 0 of `ref`: nbdcopy the export, replay the journal (e2fsck), debugfs cat. */
async function readGuestFile(socket: string, ref: string, path: string, dir: string): Promise<string> {
  const copy = join(dir, `${ref.replace('@', '-at-')}.raw`);
  await mustRun('nbdcopy', [`nbd+unix:///${ref}/0?socket=${socket}`, copy]);
  // A snapshot of a mounted filesystem may hold the file's metadata in the journal only.
  const fsck = await tool('e2fsck', ['-fy', copy]);
  assert.ok(fsck.code === 0 || fsck.code === 1, `e2fsck ${ref} exited ${fsck.code}: ${fsck.stdout}${fsck.stderr}`);
  return mustRun('debugfs', ['-R', `cat ${path}`, copy]);
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

  test('the guest writes a file to the clone; snapshots of the clone (one taken paused through QMP) hold it; gold is unchanged', async (t) => {
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
        `-qmp unix:${join(dir, '{{name}}.qmp')},server=on,wait=off -kernel ${k.kernel} -initrd ${initrd} -append 'console=ttyS0 panic=-1 loglevel=4' {{disks}}\n`,
    );
    await cliJson(node.address, ['vm', 'import', 'gold', image, '--config', template]);
    await cliJson(node.address, ['snapshot', 'create', 'gold', '--label', 's1']);
    await cliJson(node.address, ['clone', 'gold@s1', 'desk']);

    const run = await cliJson<RunConfigJson>(node.address, ['vm', 'run-config', 'desk', '--nbd', 'unix']);
    assert.equal(run.format, 'qemu');
    assert.match(run.config, new RegExp(`-name desk -uuid ${run.uuid} `));
    assert.ok(run.config.includes(`-drive 'file=nbd+unix:///desk/0?socket=${socket},format=raw,if=virtio,cache=none'`), run.config);

    // The node's --hypervisors file for guests run from such templates: one QMP socket per VM.
    const adapters = join(dir, 'hypervisors.json');
    writeFileSync(adapters, JSON.stringify({ '*': { type: 'qmp', socket: join(dir, '{{name}}.qmp') } }));
    const quiescerFor = await loadQuiescers(adapters);
    let frozen: { consistency: string; note?: string; status: string } | undefined;
    const guest = await runGuest(run.config.trim(), async () => {
      const r = await withQuiesce(quiescerFor('desk'), { id: run.uuid, name: 'desk' }, 'vm', true, async () => {
        const st = (await qmpCommand(join(dir, 'desk.qmp'), 'query-status', undefined, 5000)) as { status: string };
        await cliJson(node.address, ['snapshot', 'create', 'desk', '--label', 'frozen']);
        return st.status;
      });
      frozen = { consistency: r.consistency, status: r.value, ...(r.note ? { note: r.note } : {}) };
    });
    t.diagnostic(`guest boot to power-off: ${guest.ms} ms, snapshot while paused included (kernel ${k.version}, TCG)`);
    assert.equal(guest.code, 0, `qemu exit code; console:\n${guest.console}`);
    assert.match(guest.console, /vmferry-guest: go on\s+vmferry-guest: done/, guest.console);
    assert.deepEqual(frozen, { consistency: 'vm', status: 'paused' }, 'the snapshot was taken with the vCPUs paused through QMP');

    const snap = await cliJson<SnapshotJson & { dirtyBlocks: number }>(node.address, ['snapshot', 'create', 'desk', '--label', 'after-boot']);
    assert.ok(snap.dirtyBlocks > 0, 'the guest wrote to the clone after the frozen snapshot (its unmount)');
    const expected = `written by the guest, kernel ${k.version}\n${GOLD_TEXT}`;
    assert.equal(await readGuestFile(socket, 'desk@after-boot', '/guest-wrote.txt', dir), expected);
    assert.equal(await readGuestFile(socket, 'desk@frozen', '/guest-wrote.txt', dir), expected, 'the snapshot of the running guest holds the synced file');

    const goldCopy = join(dir, 'gold-after.raw');
    await mustRun('nbdcopy', [`nbd+unix:///gold@s1/0?socket=${socket}`, goldCopy]);
    assert.equal(sha256(readFileSync(goldCopy)), goldHash, 'the gold snapshot is unchanged');
    await mustRun('nbdcopy', [`nbd+unix:///gold/0?socket=${socket}`, goldCopy]);
    assert.equal(sha256(readFileSync(goldCopy)), goldHash, "the gold VM's live disk is unchanged");
  });
});
