/**
 * A clone registered with libvirt runs: `vm config` gives a clone a libvirt domain XML template
 * (direct kernel boot of Debian's kernel and an initramfs built here), `vm run-config --libvirt`
 * defines it on the local libvirtd (qemu:///system), `virsh start` boots it from its vDisk over
 * NBD, the guest writes a file and powers off, and a snapshot of the clone holds the file.
 * Needs a running libvirtd (and virtlogd); skipped, saying so, where none answers (CI: the
 * test:///default driver cannot run guests; hypervisor-config.test.ts covers define there).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cliJson, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { removeDir, tempDir } from './helpers.js';
import { mustRun, tool } from './nbd-helpers.js';
import { debianKernel, modulesInOrder, writeInitramfs } from './guest-helpers.js';

const URI = 'qemu:///system';
const BOOT_TIMEOUT_MS = 120_000;
const libvirtd = spawnSync('virsh', ['-c', URI, 'uri'], { encoding: 'utf8', timeout: 20_000 });
const skip = libvirtd.status === 0 ? false : `no libvirtd answers at ${URI} (${(libvirtd.stderr ?? '').trim() || String(libvirtd.error)})`;

const INIT = `#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do insmod "$m"; done
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 /dev/vda /mnt && echo "libvirt guest $(cat /proc/sys/kernel/random/boot_id)" > /mnt/libvirt.txt
sync
umount /mnt
echo 'vmferry-guest: done'
poweroff -f
`;

describe('a clone defined in libvirt boots under virsh start', { skip }, () => {
  let dir = '';
  let node: NodeProcess;
  const virsh = (...args: string[]) => tool('virsh', ['-c', URI, ...args]);

  before(async () => {
    dir = tempDir();
    // libvirt runs QEMU as libvirt-qemu: it must reach the kernel, initramfs and console file.
    chmodSync(dir, 0o755);
    node = await startNodeProcess({ dataDir: join(dir, 'data'), extraArgs: ['--nbd-listen', '127.0.0.1:0'] });
  });

  after(async () => {
    await virsh('destroy', 'lvdesk');
    await virsh('undefine', 'lvdesk');
    await node?.stop();
    removeDir(dir);
  });

  test('virsh start runs the filled domain XML; the guest writes to its clone and powers off', async (t) => {
    const k = debianKernel();
    const initrd = join(dir, 'initrd.cpio');
    writeInitramfs(initrd, { modulesDir: k.modules, modules: modulesInOrder(k.modules, ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4']), init: INIT });
    mkdirSync(join(dir, 'content'));
    writeFileSync(join(dir, 'content', 'gold.txt'), 'gold\n');
    const image = join(dir, 'gold.img');
    await mustRun('mkfs.ext4', ['-q', '-F', '-d', join(dir, 'content'), image, '32M']);
    await cliJson(node.address, ['vm', 'import', 'gold', image]);
    await cliJson(node.address, ['clone', 'gold', 'lvdesk']);

    const consoleFile = join(dir, 'lvdesk.console');
    const xml = join(dir, 'domain.xml');
    writeFileSync(
      xml,
      `<domain type='qemu'>
  <name>{{name}}</name>
  <uuid>{{uuid}}</uuid>
  <memory unit='MiB'>256</memory>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>${k.kernel}</kernel>
    <initrd>${initrd}</initrd>
    <cmdline>console=ttyS0 panic=-1 loglevel=4</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <devices>
{{disks}}
    <serial type='file'><source path='${consoleFile}'/><target port='0'/></serial>
  </devices>
</domain>
`,
    );
    await cliJson(node.address, ['vm', 'config', 'lvdesk', '--template', xml]);
    const defined = await cliJson<{ uuid: string; defined: { domain: string }[] }>(node.address, [
      'vm',
      'run-config',
      'lvdesk',
      '--libvirt',
      '--libvirt-uri',
      URI,
    ]);
    assert.equal(defined.defined[0]?.domain, 'lvdesk');
    assert.equal((await mustRun('virsh', ['-c', URI, 'domuuid', 'lvdesk'])).trim(), defined.uuid);

    const started = Date.now();
    await mustRun('virsh', ['-c', URI, 'start', 'lvdesk']);
    let state = '';
    while (Date.now() - started < BOOT_TIMEOUT_MS) {
      state = (await virsh('domstate', 'lvdesk')).stdout.trim();
      if (state !== 'running') break;
      await sleep(250);
    }
    const log = readFileSync(consoleFile, 'utf8');
    t.diagnostic(`libvirt guest start to shut off: ${Date.now() - started} ms`);
    assert.equal(state, 'shut off', `domain state; console:\n${log}`);
    assert.match(log, /vmferry-guest: done/, log);

    await cliJson(node.address, ['snapshot', 'create', 'lvdesk', '--label', 'after']);
    const copy = join(dir, 'after.raw');
    await mustRun('nbdcopy', [`nbd://${node.nbdAddress ?? ''}/lvdesk@after/0`, copy]);
    assert.match(await mustRun('debugfs', ['-R', 'cat /libvirt.txt', copy]), /^libvirt guest [0-9a-f-]{36}\n$/);
  });
});
