/** `vmferry node --data DIR --recover-wal`: the operator's explicit way past a damaged WAL. */
import { printFields, printJson, printTable } from './output.js';

/**
 * Runs point-in-time WAL recovery on `dataDir` (the node must be stopped) and prints exactly
 * which VMs and snapshots it dropped, so nothing disappears without being named.
 */
export async function recoverWalCommand(dataDir: string, json: boolean): Promise<void> {
  const { recoverWal } = await import('@vmferry/storage-node');
  const report = await recoverWal(dataDir);
  if (json) {
    printJson(report);
    return;
  }
  printFields({
    'data directory': report.dataDir,
    'damaged WAL': report.damage.length === 0 ? 'none found' : report.damage.map((d) => `${d.file} (${d.droppedBytes} bytes: ${d.reason})`).join(', '),
    'VMs dropped': report.droppedVms.length,
    'snapshots dropped': report.droppedSnapshots.length,
  });
  if (report.droppedVms.length > 0) printTable(report.droppedVms.map((v) => ({ 'dropped VM': v.name, id: v.id })));
  if (report.droppedSnapshots.length > 0) {
    printTable(report.droppedSnapshots.map((s) => ({ 'dropped snapshot': `${s.vmName}@${s.id}`, label: s.label })));
  }
}
