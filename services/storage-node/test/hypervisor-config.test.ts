/**
 * Hypervisor registration through the CLI against a real node: a template kept with the VM
 * (set at create, replaced and cleared with `vm config`, checked as untrusted input), filled
 * by `vm run-config` with each VM's name, UUID and the node's NBD address, inherited by clones,
 * and defined in libvirt with a real virsh: against the local libvirtd (qemu:///system) when
 * one answers, where the domains are read back and undefined again, else against virsh's
 * built-in test:///default driver (which forgets domains when virsh exits).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliJson, runCli, startNodeProcess, type NodeProcess } from '@vmferry/testkit';
import { assertFailed, removeDir, tempDir, type VmJson } from './helpers.js';
import { mustRun, tool } from './nbd-helpers.js';

const DOMAIN_XML = `<domain type='qemu'>
  <name>{{name}}</name>
  <uuid>{{uuid}}</uuid>
  <memory unit='MiB'>256</memory>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
{{disks}}
  </devices>
</domain>
`;

interface RunConfigJson {
  readonly vm: string;
  readonly uuid: string;
  readonly format: string;
  readonly config: string;
}

interface DefinedJson {
  readonly defined: { vm: string; uuid: string; domain: string; uri: string }[];
}

/** VMFERRY_TEST_LIBVIRT_URI, or qemu:///system when a libvirtd answers there, else the test driver. */
async function libvirtUri(): Promise<{ uri: string; persistent: boolean }> {
  const forced = process.env['VMFERRY_TEST_LIBVIRT_URI'];
  if (forced) return { uri: forced, persistent: !forced.startsWith('test:') };
  const r = await tool('virsh', ['-c', 'qemu:///system', 'uri']);
  return r.code === 0 ? { uri: 'qemu:///system', persistent: true } : { uri: 'test:///default', persistent: false };
}

describe('hypervisor config templates, run-config and libvirt', () => {
  let dir = '';
  let node: NodeProcess;
  let nbdPort = 0;
  const file = (name: string, text: string | Buffer): string => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const cli = (...args: string[]) => runCli(node.address, args);
  const defined: string[] = [];
  let libvirt = { uri: 'test:///default', persistent: false };

  before(async () => {
    dir = tempDir();
    // TCP only: the Unix socket case of run-config is the guest boot test's.
    node = await startNodeProcess({ dataDir: join(dir, 'data'), extraArgs: ['--nbd-listen', '127.0.0.1:0'] });
    nbdPort = Number(node.nbdAddress?.split(':')[1]);
    libvirt = await libvirtUri();
    await cliJson(node.address, ['vm', 'create', 'gold', '--disk', '64M', '--disk', '16M', '--config', file('domain.xml', DOMAIN_XML)]);
    await cliJson(node.address, ['snapshot', 'create', 'gold', '--label', 's1']);
  });

  after(async () => {
    for (const d of defined) await tool('virsh', ['-c', libvirt.uri, 'undefine', d]);
    await node.stop();
    removeDir(dir);
  });

  test('run-config fills name, UUID and NBD disks; vm config prints the stored template', async () => {
    const shown = await cliJson<VmJson & { uuid: string }>(node.address, ['vm', 'show', 'gold']);
    const run = await cliJson<RunConfigJson>(node.address, ['vm', 'run-config', 'gold']);
    assert.equal(run.format, 'libvirt');
    assert.equal(run.uuid, shown.uuid);
    assert.match(run.config, new RegExp(`<name>gold</name>\\n  <uuid>${shown.uuid}</uuid>`));
    assert.ok(run.config.includes(`<source protocol='nbd' name='gold/1'><host name='127.0.0.1' port='${nbdPort}'/></source>`), run.config);
    assert.ok(run.config.includes(`<target dev='vdb' bus='virtio'/>`));
    const people = await cli('vm', 'run-config', 'gold');
    assert.equal(people.stdout, run.config);
    assert.equal((await cli('vm', 'config', 'gold')).stdout, DOMAIN_XML);
  });

  test('clone --count --libvirt defines each clone with its own UUID and NBD exports', async (t) => {
    t.diagnostic(`libvirt: ${libvirt.uri}`);
    const r = await cliJson<DefinedJson & { vms: { name: string; uuid: string }[] }>(node.address, [
      'clone',
      'gold@s1',
      'desk',
      '--count',
      '3',
      '--libvirt',
      '--libvirt-uri',
      libvirt.uri,
    ]);
    defined.push(...r.defined.map((d) => d.domain));
    assert.deepEqual(
      r.defined.map((d) => d.domain),
      ['desk-001', 'desk-002', 'desk-003'],
    );
    assert.deepEqual(
      r.defined.map((d) => d.uuid),
      r.vms.map((v) => v.uuid),
    );
    assert.equal(new Set([...r.vms.map((v) => v.uuid)]).size, 3, 'each clone has its own UUID');
    if (!libvirt.persistent) return;
    for (const v of r.vms) {
      assert.equal((await mustRun('virsh', ['-c', libvirt.uri, 'domuuid', v.name])).trim(), v.uuid);
      const xml = await mustRun('virsh', ['-c', libvirt.uri, 'dumpxml', v.name]);
      assert.ok(xml.includes(`<source protocol='nbd' name='${v.name}/0'>`), xml);
      assert.ok(xml.includes(`port='${nbdPort}'`), xml);
    }
    // Redefining after a template change updates the domain in place.
    const one = await cliJson<DefinedJson>(node.address, ['vm', 'run-config', 'desk-002', '--libvirt', '--libvirt-uri', libvirt.uri]);
    assert.equal(one.defined[0]?.domain, 'desk-002');
  });

  test('templates are checked as untrusted input: unknown placeholders named, control characters, missing vDisks, size', async () => {
    assertFailed(
      await cli('vm', 'config', 'gold', '--template', file('bad1', '<domain>{{name}} {{nmae}} {{disk0.nbdx}}</domain>')),
      'INVALID_ARGUMENT',
      '{{nmae}}, {{disk0.nbdx}}',
    );
    assertFailed(await cli('vm', 'config', 'gold', '--template', file('bad2', '<domain>{{name}}\u0001</domain>')), 'INVALID_ARGUMENT', 'control character');
    assertFailed(await cli('vm', 'config', 'gold', '--template', file('bad3', '{{disk2.nbd}}')), 'INVALID_ARGUMENT', 'names vDisk 2; the VM has 2');
    assertFailed(await cli('vm', 'config', 'gold', '--template', file('bad4', '{{name')), 'INVALID_ARGUMENT', 'opens no placeholder');
    assertFailed(
      await cli('vm', 'create', 'big', '--disk', '1M', '--config', file('bad5', Buffer.alloc(1024 * 1024 + 1, 0x61))),
      'INVALID_ARGUMENT',
      'the limit is',
    );
    assertFailed(await cli('vm', 'create', 'one', '--disk', '1M', '--config', file('bad6', '-drive file={{disk1.nbd}}')), 'INVALID_ARGUMENT', 'names vDisk 1');
    assert.equal((await cli('vm', 'config', 'gold')).stdout, DOMAIN_XML, 'a refused template changes nothing');
    // Configs without placeholders stay opaque (VMX, …), as before templates.
    await cliJson(node.address, ['vm', 'create', 'vmx', '--disk', '1M', '--config', file('vmx', 'displayName = "x"\n')]);
  });

  test('vm config replaces and clears; QEMU templates; errors for no template, no socket, libvirt with a QEMU template', async () => {
    await cliJson(node.address, ['vm', 'create', 'qemu-vm', '--disk', '8M']);
    const none = await cli('vm', 'run-config', 'qemu-vm');
    assert.notEqual(none.code, 0);
    assert.match(none.stderr, /VM 'qemu-vm' has no hypervisor config template: vmferry vm config qemu-vm --template FILE/);
    const set = await cliJson<{ format: string; bytes: number }>(node.address, [
      'vm',
      'config',
      'qemu-vm',
      '--template',
      file('q', 'qemu-system-x86_64 -name {{name}} -uuid {{uuid}} {{disks}}'),
    ]);
    assert.equal(set.format, 'qemu');
    const run = await cliJson<RunConfigJson>(node.address, ['vm', 'run-config', 'qemu-vm']);
    assert.equal(
      run.config,
      `qemu-system-x86_64 -name qemu-vm -uuid ${run.uuid} -drive file=nbd://127.0.0.1:${nbdPort}/qemu-vm/0,format=raw,if=virtio,cache=none`,
    );
    const noSocket = await cli('vm', 'run-config', 'qemu-vm', '--nbd', 'unix');
    assert.notEqual(noSocket.code, 0);
    assert.match(noSocket.stderr, /has no NBD Unix socket: start it with --nbd-listen HOST:PORT and\/or --nbd-socket PATH/);
    const libvirtQemu = await cli('vm', 'run-config', 'qemu-vm', '--libvirt', '--libvirt-uri', 'test:///default');
    assert.match(libvirtQemu.stderr, /has a QEMU command line template, not libvirt domain XML/);
    const before = (await cliJson<unknown[]>(node.address, ['vm', 'list'])).length;
    const cloneQemu = await cli('clone', 'qemu-vm', 'nope', '--libvirt', '--libvirt-uri', 'test:///default');
    assert.match(cloneQemu.stderr, /no libvirt domain XML template/);
    assert.equal((await cliJson<unknown[]>(node.address, ['vm', 'list'])).length, before, 'a refused clone --libvirt makes no clone');
    const cleared = await cliJson<{ bytes: number; format: string }>(node.address, ['vm', 'config', 'qemu-vm', '--clear']);
    assert.deepEqual([cleared.bytes, cleared.format], [0, 'none']);
  });

  test('an unreachable libvirtd is a clear error, found before clone --libvirt makes any clone', async () => {
    const uri = `qemu+unix:///system?socket=${join(dir, 'no-libvirtd.sock')}`;
    const r = await cli('vm', 'run-config', 'gold', '--libvirt', '--libvirt-uri', uri);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot reach libvirtd at qemu\+unix:\/\/\/system\?socket=.*is libvirtd, or virtqemud, running\?/s);
    const before = (await cliJson<unknown[]>(node.address, ['vm', 'list'])).length;
    const c = await cli('clone', 'gold@s1', 'unreached', '--count', '2', '--libvirt', '--libvirt-uri', uri);
    assert.match(c.stderr, /cannot reach libvirtd/);
    assert.equal((await cliJson<unknown[]>(node.address, ['vm', 'list'])).length, before);
  });
});
