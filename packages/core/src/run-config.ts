/*
 * Hypervisor config templates: the config kept with a VM (libvirt domain XML or a QEMU
 * command line) with placeholders that `vm run-config` fills in for one VM, so every clone of
 * a gold VM gets its own name, UUID and NBD URIs. Pure: the caller supplies the VM and the
 * node's NBD endpoint.
 *
 * Syntax: `{{NAME}}` (spaces inside the braces allowed). `{{` always opens a placeholder.
 *   name, id, uuid                      the VM's name, vmferry id, and UUID (vmUuid below)
 *   disks                               every vDisk, as libvirt <disk> elements or QEMU -drive options
 *   diskN.nbd                           vDisk N's NBD URI (nbd://HOST:PORT/VM/N or nbd+unix:///VM/N?socket=PATH)
 *   diskN.export, diskN.size, diskN.dev the export name (VM/N), size in bytes, a device name (vda, vdb, …)
 *   nbd.host, nbd.port, nbd.socket      the node's NBD endpoint (only the ones it serves)
 * A template whose first non-blank character is `<` is libvirt XML: values are XML-escaped.
 * Otherwise it is a QEMU command line: commas are doubled (QEMU's option escape) and values
 * holding characters a POSIX shell treats specially are single-quoted.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError, LimitExceededError } from './errors.js';
import { MAX_DISKS_PER_VM, MAX_HYPERVISOR_CONFIG_BYTES } from './replica-record.js';

export type TemplateFormat = 'libvirt' | 'qemu';

/** How a hypervisor on this host reaches the node's NBD server: TCP or a Unix socket. */
export type NbdEndpoint = { readonly host: string; readonly port: number } | { readonly socket: string };

export interface RunConfigVm {
  readonly id: string;
  readonly name: string;
  readonly disks: readonly { readonly index: number; readonly size: number }[];
}

export interface RunConfig {
  readonly format: TemplateFormat;
  readonly config: string;
}

/** Placeholders one template may hold (each is checked and filled). */
export const MAX_TEMPLATE_PLACEHOLDERS = 10_000;
/** The largest filled config (`{{disks}}` repeated can multiply a template's size). */
export const MAX_RUN_CONFIG_BYTES = 4 * 1024 * 1024;

// No `\s*` around the key: with a lazy key, an unclosed `{{` and a run of spaces backtracked in
// cubic time (2,000 spaces: 1.6 s of a blocked node). The key is trimmed instead.
const PLACEHOLDER = /\{\{([^{}]*)\}\}/g;
const DISK_KEY = /^disk(\d{1,3})\.(nbd|export|size|dev)$/;
const PLAIN_KEYS = new Set(['name', 'id', 'uuid', 'disks', 'nbd.host', 'nbd.port', 'nbd.socket']);
// Tab, LF and CR are text; other control characters (and NUL) have no place in a config.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/** Namespace of vmferry's name-based (version 5) VM UUIDs. */
const UUID_NAMESPACE = Buffer.from('6d1f0c3e8b2a4f5d9e7c1a2b3c4d5e6f', 'hex');

/**
 * The VM's UUID for hypervisors: a version-5 UUID of its vmferry id, so it is stable (the
 * same every time, on every host) and each clone, having its own id, gets its own.
 */
export function vmUuid(vmId: string): string {
  const h = createHash('sha1').update(UUID_NAMESPACE).update(vmId, 'utf8').digest().subarray(0, 16);
  h[6] = ((h[6] ?? 0) & 0x0f) | 0x50;
  h[8] = ((h[8] ?? 0) & 0x3f) | 0x80;
  const x = h.toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

/** The format a template is written in (see the header). */
export function templateFormat(text: string): TemplateFormat {
  return text.trimStart().startsWith('<') ? 'libvirt' : 'qemu';
}

/** 1-based line of `offset`, for error messages. */
const lineOf = (text: string, offset: number): number => text.slice(0, offset).split('\n').length;

/**
 * Decodes and checks a stored config as untrusted input: at most MAX_HYPERVISOR_CONFIG_BYTES,
 * UTF-8, no control characters but tab and line ends, every `{{…}}` well formed and known, and
 * (given `diskCount`) every diskN naming a vDisk the VM has. Returns the text.
 */
export function checkTemplate(bytes: Uint8Array, diskCount?: number): string {
  if (bytes.length > MAX_HYPERVISOR_CONFIG_BYTES)
    throw new InvalidArgumentError(`hypervisor config is ${bytes.length} bytes; the limit is ${MAX_HYPERVISOR_CONFIG_BYTES}`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new InvalidArgumentError('hypervisor config is not UTF-8 text');
  }
  const bad = CONTROL.exec(text);
  if (bad)
    throw new InvalidArgumentError(
      `hypervisor config has a control character (0x${text.charCodeAt(bad.index).toString(16)}) on line ${lineOf(text, bad.index)}`,
    );
  const keys = placeholders(text);
  const unknown = [...new Set(keys.filter((k) => !PLAIN_KEYS.has(k) && !DISK_KEY.test(k)))];
  if (unknown.length > 0)
    throw new InvalidArgumentError(
      `hypervisor config template: unknown placeholder${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `{{${k}}}`).join(', ')}`,
    );
  for (const k of keys) {
    const n = Number(DISK_KEY.exec(k)?.[1] ?? -1);
    if (n >= MAX_DISKS_PER_VM || (diskCount !== undefined && n >= diskCount)) {
      throw new InvalidArgumentError(
        `hypervisor config template: {{${k}}} names vDisk ${n}; the VM has ${diskCount ?? MAX_DISKS_PER_VM} (0..${(diskCount ?? MAX_DISKS_PER_VM) - 1})`,
      );
    }
  }
  return text;
}

/**
 * The check a VM's stored config meets (at create, import, set and clone): at most
 * MAX_HYPERVISOR_CONFIG_BYTES; and, when it holds `{{`, a template that checkTemplate accepts
 * for `diskCount` vDisks. Other configs (VMX, …) stay opaque bytes.
 */
export function validateHypervisorConfig(bytes: Uint8Array, diskCount: number): void {
  if (bytes.length > MAX_HYPERVISOR_CONFIG_BYTES)
    throw new InvalidArgumentError(`hypervisor config is ${bytes.length} bytes; the limit is ${MAX_HYPERVISOR_CONFIG_BYTES}`);
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).includes('{{')) checkTemplate(bytes, diskCount);
}

/** The placeholder names in `text`, in order; throws on a `{{` that opens no well-formed one. */
function placeholders(text: string): string[] {
  const keys: string[] = [];
  let at = 0;
  for (const m of text.matchAll(PLACEHOLDER)) {
    const stray = text.indexOf('{{', at);
    if (stray >= 0 && stray < m.index) throw malformed(text, stray);
    keys.push((m[1] ?? '').trim());
    if (keys.length > MAX_TEMPLATE_PLACEHOLDERS)
      throw new LimitExceededError(`hypervisor config template has more than ${MAX_TEMPLATE_PLACEHOLDERS} placeholders`);
    at = m.index + m[0].length;
  }
  const stray = text.indexOf('{{', at);
  if (stray >= 0) throw malformed(text, stray);
  return keys;
}

const malformed = (text: string, at: number): InvalidArgumentError =>
  new InvalidArgumentError(
    `hypervisor config template: '{{' on line ${lineOf(text, at)} opens no placeholder (write {{NAME}}: name, id, uuid, disks, diskN.nbd, …)`,
  );

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
const xmlEscape = (v: string): string => v.replace(/[&<>"']/g, (c) => XML_ESCAPES[c] ?? c);
/** One shell word: as is when plain, else single-quoted. */
const shellWord = (v: string): string => (/^[A-Za-z0-9_./:=,@%+-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
const qemuValue = (v: string): string => shellWord(v.replace(/,/g, ',,'));

/** vda, vdb, …, vdz, vdaa, … (as Linux names virtio disks). */
function deviceName(index: number): string {
  let n = index;
  let s = '';
  do {
    s = String.fromCharCode(97 + (n % 26)) + s;
    n = Math.floor(n / 26) - 1;
  } while (n >= 0);
  return `vd${s}`;
}

function nbdUri(nbd: NbdEndpoint, exportName: string): string {
  if ('socket' in nbd) return `nbd+unix:///${exportName}?socket=${encodeURI(nbd.socket).replace(/[?#&]/g, encodeURIComponent)}`;
  const host = nbd.host.includes(':') ? `[${nbd.host}]` : nbd.host;
  return `nbd://${host}:${nbd.port}/${exportName}`;
}

function libvirtDisk(nbd: NbdEndpoint, exportName: string, dev: string): string {
  const host = 'socket' in nbd ? `<host transport='unix' socket='${xmlEscape(nbd.socket)}'/>` : `<host name='${xmlEscape(nbd.host)}' port='${nbd.port}'/>`;
  return [
    `<disk type='network' device='disk'>`,
    `  <driver name='qemu' type='raw' cache='none'/>`,
    `  <source protocol='nbd' name='${xmlEscape(exportName)}'>${host}</source>`,
    `  <target dev='${dev}' bus='virtio'/>`,
    `</disk>`,
  ].join('\n');
}

/**
 * Fills `template` for `vm` (checked first, see checkTemplate). Unknown placeholders, a vDisk
 * the VM lacks, or an NBD endpoint part the node does not serve are errors naming them.
 */
export function fillTemplate(template: Uint8Array, vm: RunConfigVm, nbd: NbdEndpoint): RunConfig {
  const text = checkTemplate(template, vm.disks.length);
  const format = templateFormat(text);
  const escape = format === 'libvirt' ? xmlEscape : qemuValue;
  const exportName = (i: number): string => `${vm.name}/${i}`;
  const disks = (): string =>
    format === 'libvirt'
      ? vm.disks.map((d) => libvirtDisk(nbd, exportName(d.index), deviceName(d.index))).join('\n')
      : vm.disks.map((d) => `-drive ${shellWord(`file=${nbdUri(nbd, exportName(d.index)).replace(/,/g, ',,')},format=raw,if=virtio,cache=none`)}`).join(' ');
  const endpoint = (key: 'host' | 'port' | 'socket'): string => {
    const v = key === 'socket' ? ('socket' in nbd ? nbd.socket : undefined) : 'socket' in nbd ? undefined : String(nbd[key]);
    if (v === undefined)
      throw new InvalidArgumentError(
        `hypervisor config template: {{nbd.${key}}} needs the node's NBD ${'socket' in nbd ? 'TCP address' : 'Unix socket'}, which is not in use`,
      );
    return escape(v);
  };
  const value = (key: string): string => {
    const disk = DISK_KEY.exec(key);
    if (disk) {
      const d = vm.disks[Number(disk[1])];
      if (!d) throw new InvalidArgumentError(`hypervisor config template: {{${key}}} names a vDisk the VM lacks`);
      if (disk[2] === 'nbd') return escape(nbdUri(nbd, exportName(d.index)));
      if (disk[2] === 'export') return escape(exportName(d.index));
      if (disk[2] === 'size') return String(d.size);
      return deviceName(d.index);
    }
    if (key === 'name') return escape(vm.name);
    if (key === 'id') return escape(vm.id);
    if (key === 'uuid') return vmUuid(vm.id);
    if (key === 'disks') return disks();
    return endpoint(key.slice('nbd.'.length) as 'host' | 'port' | 'socket');
  };
  let size = 0;
  const config = text.replace(PLACEHOLDER, (_m, key: string) => {
    const v = value(key.trim());
    size += v.length;
    if (size > MAX_RUN_CONFIG_BYTES) throw new LimitExceededError(`the filled hypervisor config would exceed ${MAX_RUN_CONFIG_BYTES} bytes`);
    return v;
  });
  return { format, config };
}
