/**
 * The final check, on a node restarted after the load: every VM and snapshot a client holds
 * in its model is listed and exports exactly its expected bytes; nothing else is listed (no
 * half-made VM or snapshot, nothing whose delete was reported); verify is clean.
 */
import type { ClientIo } from './client-io.js';
import type { SoakClient } from './client.js';
import { verifyOnce } from './loops.js';

/** Checks everything the clients were told was done. */
export async function finalCheck(io: ClientIo, clients: readonly { client: SoakClient; io: ClientIo }[]): Promise<void> {
  const tally = io.tally;
  for (const { client } of clients) {
    // A kill at the very end may have cut the last operation off: look first.
    for (let i = 0; i < 5 && !(await client.settle()); i++);
  }
  const listed = await io.listVms();
  if (!listed) throw new Error('vm list failed in the final check');
  tally.check('final vm list');
  const expected = new Map(clients.flatMap(({ client, io: cio }) => client.vms.map((vm) => [vm.name, { vm, io: cio }] as const)));
  for (const v of listed) if (!expected.has(v.name)) tally.loss(`VM ${v.name} is listed`, 'only VMs reported created and not deleted', 'an unreported VM');
  const names = new Set(listed.map((v) => v.name));
  for (const name of expected.keys()) if (!names.has(name)) tally.loss(`VM ${name} reported created`, 'listed', 'missing from vm list');

  // One checker per client, in parallel: each exports its own VMs.
  await Promise.all(
    clients.map(async ({ client, io: cio }) => {
      for (const vm of client.vms.filter((v) => names.has(v.name))) {
        const snaps = await cio.listSnapshots(vm.name);
        if (!snaps) {
          tally.loss(`snapshot list ${vm.name}`, 'a list', 'failed');
          continue;
        }
        tally.check('final snapshot list');
        const ids = new Set(snaps.map((s) => s.id));
        for (const s of snaps)
          if (!vm.snapshots.some((m) => m.id === s.id))
            tally.loss(`snapshot ${vm.name}@${s.id} is listed`, 'only snapshots reported created', 'an unreported snapshot');
        for (const s of vm.snapshots) {
          if (!ids.has(s.id)) tally.loss(`snapshot ${vm.name}@${s.id} reported created`, 'listed', 'missing from snapshot list');
          else if (!s.lost) await cio.check(`${vm.name}@${s.id}`, s.image, 'final snapshot export', `created at ${s.at} s`);
        }
        if (!vm.lost) await cio.check(vm.name, vm.image, 'final live export');
      }
    }),
  );
  const v = await verifyOnce(io.ctl, tally, 'final');
  if (v === 'failed' || v === 'interrupted') tally.loss('final verify', 'a clean report', `verify did not finish (${v})`);
}
