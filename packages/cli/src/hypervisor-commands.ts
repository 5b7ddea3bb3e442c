/**
 * Running VMs from vmferry: `vm config` (the stored hypervisor config template), `vm
 * run-config` (that template filled in for one VM: name, UUID, NBD URIs) and, with --libvirt,
 * `virsh define` of the filled domain XML (also after `clone --libvirt`).
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { FailedPreconditionError, fillTemplate, InvalidArgumentError, templateFormat, vmUuid, type NbdEndpoint, type RunConfig } from '@vmferry/core';
import type { NodeInfoView, VmView } from '@vmferry/grpc-edge';
import { printFields, printJson, printTable } from './output.js';
import { withClient } from './with-client.js';
import type { DefinedDomain } from './virsh.js';

export interface RunOptions {
  /** tcp or unix: how the hypervisor reaches the node's NBD server (default: TCP when served). */
  readonly nbd?: string;
  readonly libvirt?: boolean;
  readonly libvirtUri?: string;
}

/** The node's NBD endpoint the filled config points at. */
export function nbdEndpoint(info: NodeInfoView, via?: string): NbdEndpoint {
  if (via !== undefined && via !== 'tcp' && via !== 'unix') throw new InvalidArgumentError(`--nbd ${via}: use tcp or unix`);
  // The Unix socket first when the node serves one: it needs no TLS, while a node with the
  // site's TLS files requires TLS on TCP, which the filled drives do not carry (README).
  const useUnix = via === 'unix' || (via === undefined && info.nbdSocket !== '');
  if (useUnix && info.nbdSocket !== '') return { socket: info.nbdSocket };
  if (!useUnix && info.nbdAddress !== '') {
    const i = info.nbdAddress.lastIndexOf(':');
    return { host: info.nbdAddress.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(info.nbdAddress.slice(i + 1)) };
  }
  const what = via === undefined ? 'serves no NBD' : `has no NBD ${via === 'unix' ? 'Unix socket' : 'TCP address'}`;
  throw new FailedPreconditionError(`the storage node ${what}: start it with --nbd-listen HOST:PORT and/or --nbd-socket PATH`);
}

/** `vm`'s stored template filled in; FailedPrecondition when it has none. */
export function runConfigOf(vm: VmView, nbd: NbdEndpoint): RunConfig {
  if (vm.hypervisorConfig.length === 0) {
    throw new FailedPreconditionError(`VM '${vm.name}' has no hypervisor config template: vmferry vm config ${vm.name} --template FILE`);
  }
  return fillTemplate(vm.hypervisorConfig, { id: vm.id, name: vm.name, disks: vm.disks }, nbd);
}

/** Fills and `virsh define`s each VM's config (libvirt XML only, checked before any is defined). */
export async function defineVms(vms: readonly VmView[], nbd: NbdEndpoint, uri?: string): Promise<(DefinedDomain & { vm: string; uuid: string })[]> {
  const configs = vms.map((v) => ({ vm: v, run: runConfigOf(v, nbd) }));
  const other = configs.find((c) => c.run.format !== 'libvirt');
  if (other) throw new InvalidArgumentError(`--libvirt: VM '${other.vm.name}' has a QEMU command line template, not libvirt domain XML`);
  const { defineDomain } = await import('./virsh.js');
  const out: (DefinedDomain & { vm: string; uuid: string })[] = [];
  for (const c of configs) out.push({ vm: c.vm.name, uuid: vmUuid(c.vm.id), ...(await defineDomain(c.run.config, uri)) });
  return out;
}

/** Before a `clone --libvirt`: the source's template is libvirt XML and libvirtd answers (so no clone is made for nothing). */
export async function checkLibvirtClone(vm: VmView, uri?: string): Promise<void> {
  if (vm.hypervisorConfig.length === 0 || templateFormat(vm.hypervisorConfig.toString('utf8')) !== 'libvirt') {
    throw new InvalidArgumentError(`--libvirt: VM '${vm.name}' has no libvirt domain XML template (vmferry vm config ${vm.name} --template domain.xml)`);
  }
  const { checkLibvirt } = await import('./virsh.js');
  await checkLibvirt(uri);
}

export function printDefined(defined: readonly { vm: string; uuid: string; domain: string }[]): void {
  printTable(defined.map((d) => ({ vm: d.vm, domain: d.domain, uuid: d.uuid })));
}

export function registerHypervisorCommands(vm: Command): void {
  vm.command('config <vm>')
    .description('show the hypervisor config template kept with the VM, or replace it (--template FILE, --clear)')
    .option('--template <file>', 'libvirt domain XML or a QEMU command line with {{name}}, {{uuid}}, {{diskN.nbd}}, {{disks}}, … (see README)')
    .option('--clear', 'remove the config')
    .action(
      withClient(async (client, g, name: string, opts: { template?: string; clear?: boolean }) => {
        if (opts.template !== undefined && opts.clear) throw new InvalidArgumentError('give --template FILE or --clear, not both');
        const file = opts.template;
        const setting = file !== undefined || opts.clear === true;
        const v = setting
          ? await client.setVmConfig({ vm: name, hypervisorConfig: file === undefined ? Buffer.alloc(0) : await readFile(file) })
          : await client.getVm(name);
        const text = v.hypervisorConfig.toString('utf8');
        const format = v.hypervisorConfig.length === 0 ? 'none' : templateFormat(text);
        if (g.json) printJson({ vm: v.name, id: v.id, uuid: v.uuid, bytes: v.hypervisorConfig.length, format, config: text });
        else if (setting) printFields({ vm: v.name, config: `${v.hypervisorConfig.length} bytes`, format });
        else process.stdout.write(text);
      }),
    );
  vm.command('run-config <vm>')
    .description("print the VM's hypervisor config template filled in (name, UUID, NBD URIs); --libvirt: virsh define it")
    .option('--nbd <tcp|unix>', "how the hypervisor reaches the node's NBD server (default: the Unix socket when the node serves one)")
    .option('--libvirt', 'define the domain in libvirt (virsh define) instead of printing it')
    .option('--libvirt-uri <uri>', 'libvirt connection URI for virsh -c (qemu:///system, …)')
    .action(
      withClient(async (client, g, name: string, o: RunOptions) => {
        const [v, info] = await Promise.all([client.getVm(name), client.getNodeInfo()]);
        const nbd = nbdEndpoint(info, o.nbd);
        if (o.libvirt) {
          const defined = await defineVms([v], nbd, o.libvirtUri);
          if (g.json) printJson({ vm: v.name, uuid: v.uuid, defined });
          else printDefined(defined);
          return;
        }
        const run = runConfigOf(v, nbd);
        if (g.json) printJson({ vm: v.name, id: v.id, uuid: v.uuid, format: run.format, config: run.config });
        else process.stdout.write(run.config.endsWith('\n') ? run.config : `${run.config}\n`);
      }),
    );
}
