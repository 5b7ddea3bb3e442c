import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { checkTemplate, fillTemplate, MAX_HYPERVISOR_CONFIG_BYTES, templateFormat, vmUuid, type NbdEndpoint, type RunConfigVm } from '../src/index.js';

const tcp: NbdEndpoint = { host: '127.0.0.1', port: 10809 };
const unix: NbdEndpoint = { socket: '/run/vmferry nbd/x.sock' };
const vm: RunConfigVm = {
  id: '01JABCDEFGHJKMNPQRSTVWXYZ0',
  name: 'desk-001',
  disks: [
    { index: 0, size: 1 << 30 },
    { index: 1, size: 4096 },
  ],
};
const fill = (t: string, nbd: NbdEndpoint = tcp, v: RunConfigVm = vm): string => fillTemplate(Buffer.from(t), v, nbd).config;

describe('vmUuid', () => {
  test('is a stable version-5 UUID, different for different VMs', () => {
    const u = vmUuid(vm.id);
    assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(vmUuid(vm.id), u);
    assert.notEqual(vmUuid('01JABCDEFGHJKMNPQRSTVWXYZ1'), u);
  });
});

describe('fillTemplate', () => {
  test('QEMU command line: name, uuid, per-disk URIs and sizes, spaces inside braces', () => {
    const out = fillTemplate(
      Buffer.from('qemu-system-x86_64 -name {{name}} -uuid {{ uuid }} -drive file={{disk0.nbd}},if=virtio # {{disk1.size}} {{disk1.dev}}'),
      vm,
      tcp,
    );
    assert.equal(out.format, 'qemu');
    assert.equal(out.config, `qemu-system-x86_64 -name desk-001 -uuid ${vmUuid(vm.id)} -drive file=nbd://127.0.0.1:10809/desk-001/0,if=virtio # 4096 vdb`);
  });

  test('QEMU: a Unix socket URI is shell-quoted and its commas doubled; {{disks}} gives one -drive per vDisk', () => {
    assert.equal(fill('-drive file={{disk0.nbd}}', unix), `-drive file='nbd+unix:///desk-001/0?socket=/run/vmferry%20nbd/x.sock'`);
    assert.equal(fill('{{disk0.nbd}}', { socket: '/a,b' }), `'nbd+unix:///desk-001/0?socket=/a,,b'`);
    assert.equal(
      fill('qemu {{disks}}'),
      'qemu -drive file=nbd://127.0.0.1:10809/desk-001/0,format=raw,if=virtio,cache=none -drive file=nbd://127.0.0.1:10809/desk-001/1,format=raw,if=virtio,cache=none',
    );
  });

  test('libvirt XML: values are XML-escaped; {{disks}} gives network disks over TCP or a socket', () => {
    const t = "<domain type='kvm'><name>{{name}}</name><uuid>{{uuid}}</uuid><devices>{{disks}}</devices><x a='{{nbd.socket}}'/></domain>";
    const out = fillTemplate(Buffer.from(t), vm, { socket: "/tmp/a'&<b>" });
    assert.equal(out.format, 'libvirt');
    assert.match(out.config, /<name>desk-001<\/name>/);
    assert.match(out.config, /<x a='\/tmp\/a&apos;&amp;&lt;b&gt;'\/>/);
    assert.match(out.config, /<source protocol='nbd' name='desk-001\/1'><host transport='unix' socket='\/tmp\/a&apos;&amp;&lt;b&gt;'\/><\/source>/);
    assert.match(out.config, /<target dev='vdb' bus='virtio'\/>/);
    assert.match(fill('  <domain>{{disks}}</domain>'), /<host name='127.0.0.1' port='10809'\/>/);
    assert.equal(templateFormat('\n <domain/>'), 'libvirt');
    assert.equal(templateFormat('qemu-system-x86_64'), 'qemu');
  });

  test('unknown placeholders are an error naming them all', () => {
    assert.throws(() => fill('{{name}} {{nmae}} {{disk0.nbdd}} {{nmae}}'), /unknown placeholders \{\{nmae\}\}, \{\{disk0\.nbdd\}\}$/);
  });

  test('a vDisk the VM lacks, or an NBD endpoint the node does not serve, is an error', () => {
    assert.throws(() => fill('{{disk2.nbd}}'), /\{\{disk2\.nbd\}\} names vDisk 2; the VM has 2/);
    assert.throws(() => fill('{{nbd.socket}}', tcp), /needs the node's NBD Unix socket/);
    assert.throws(() => fill('{{nbd.port}}', unix), /needs the node's NBD TCP address/);
    assert.equal(fill('{{nbd.host}}:{{nbd.port}}'), '127.0.0.1:10809');
  });

  test('malformed braces, control characters, bad UTF-8 and oversize templates are refused', () => {
    assert.throws(() => fill('a\n{{name'), /'\{\{' on line 2 opens no placeholder/);
    // A template made to backtrack: an unclosed '{{' before 1 MiB of spaces is refused at once
    // (the old pattern took seconds for 2,000 spaces, blocking the node meanwhile).
    const started = performance.now();
    assert.throws(() => checkTemplate(Buffer.from('{{' + ' '.repeat(MAX_HYPERVISOR_CONFIG_BYTES - 8))), /opens no placeholder/);
    assert.ok(performance.now() - started < 2000, `checking took ${Math.round(performance.now() - started)} ms`);
    assert.throws(() => fill('{{ {{name}}'), /opens no placeholder/);
    assert.throws(() => fill('x\u0000y'), /control character \(0x0\) on line 1/);
    assert.throws(() => checkTemplate(Buffer.from([0x3c, 0xff, 0xfe])), /not UTF-8/);
    assert.throws(() => checkTemplate(Buffer.alloc(MAX_HYPERVISOR_CONFIG_BYTES + 1, 0x61)), /limit is/);
    assert.throws(() => checkTemplate(Buffer.from('{{disk64.nbd}}')), /names vDisk 64/);
    assert.throws(() => checkTemplate(Buffer.from('{{name}}'.repeat(10_001))), /more than 10000 placeholders/);
    assert.equal(checkTemplate(Buffer.from('plain\tVMX\r\n')), 'plain\tVMX\r\n');
  });

  test('a template without placeholders fills to itself', () => {
    assert.equal(fill('displayName = "x"\n'), 'displayName = "x"\n');
  });
});
