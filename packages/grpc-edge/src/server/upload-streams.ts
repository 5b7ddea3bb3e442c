/*
 * The two client streams that carry disk data into the node: import (a new VM from raw
 * images) and write (into a live vDisk). Their protocol rules live here, with the messages
 * clients see: header first, import commits only on its end marker, a write that carried less
 * than it declared reports failure. Data buffers go to the API as they arrived (no copy).
 */
import { InvalidArgumentError, type StorageNodeApi, type VmRecord } from '@vmferry/core';
import type { ImportVmRequest, WriteDiskRequest, WriteDiskResponse } from '@vmferry/proto';

/** What both streams read: the messages and whether the client cancelled. */
interface UploadCall<T> extends AsyncIterable<T> {
  readonly cancelled: boolean;
}

/**
 * Reads an import stream and commits the VM, or aborts it (nothing stays) and rethrows.
 * Throws InvalidArgumentError for a stream out of order, a byte count that disagrees with
 * the end marker, a cancel, or a stream that ended without its end marker.
 */
export async function receiveImport(api: StorageNodeApi, call: UploadCall<ImportVmRequest>): Promise<VmRecord> {
  let session: Awaited<ReturnType<StorageNodeApi['beginImport']>> | undefined;
  try {
    // Only the client's end marker commits: on a cancel, grpc-js can end this loop
    // normally before `call.cancelled` is set, so "the loop ended" proves nothing.
    let ended = false;
    let dataBytes = 0;
    for await (const msg of call) {
      const kind = msg.kind;
      if (ended) throw new InvalidArgumentError('import stream sent a message after its end marker');
      if (kind?.$case === 'header') {
        if (session) throw new InvalidArgumentError('import stream sent a second header');
        session = await api.beginImport({ name: kind.value.name, disks: kind.value.disks, hypervisorConfig: kind.value.hypervisorConfig });
      } else if (kind?.$case === 'data') {
        if (!session) throw new InvalidArgumentError('import stream must start with a header');
        await session.write(kind.value.diskIndex, kind.value.offset, kind.value.data);
        dataBytes += kind.value.data.length;
      } else if (kind?.$case === 'end') {
        if (!session) throw new InvalidArgumentError('import stream must start with a header');
        if (kind.value.dataBytes !== dataBytes) {
          throw new InvalidArgumentError(
            `import of VM '${session.vm.name}': end marker declares dataBytes ${kind.value.dataBytes}, the stream carried ${dataBytes}`,
          );
        }
        ended = true;
      }
    }
    if (!session) throw new InvalidArgumentError('import stream was empty');
    if (call.cancelled) throw new InvalidArgumentError(`import of VM '${session.vm.name}' cancelled by the client`);
    if (!ended) {
      throw new InvalidArgumentError(
        `import of VM '${session.vm.name}' ended without its end marker (cancelled, or a client older than the end marker); nothing was committed`,
      );
    }
    return await session.finish();
  } catch (e) {
    await session?.abort();
    throw e;
  }
}

/**
 * Reads a write stream into the live vDisk it names. Throws InvalidArgumentError for a stream
 * out of order, more data than declared, or (after dropping the undispatched tail) a cancel
 * or a stream shorter than declared; the API's errors pass through.
 */
export async function receiveWrite(api: StorageNodeApi, call: UploadCall<WriteDiskRequest>): Promise<WriteDiskResponse> {
  let writer: ReturnType<StorageNodeApi['openWriter']> | undefined;
  try {
    let declared = 0;
    let received = 0;
    for await (const msg of call) {
      const kind = msg.kind;
      if (kind?.$case === 'header') {
        if (writer) throw new InvalidArgumentError('write stream sent a second header');
        writer = api.openWriter(kind.value.vm, kind.value.diskIndex, kind.value.offset, kind.value.length);
        declared = kind.value.length;
      } else if (kind?.$case === 'data') {
        if (!writer) throw new InvalidArgumentError('write stream must start with a header');
        received += kind.value.length;
        if (declared > 0 && received > declared) throw new InvalidArgumentError(`write stream carried more than its declared length ${declared}`);
        await writer.write(kind.value);
      }
    }
    if (!writer) throw new InvalidArgumentError('write stream was empty');
    // A cancel can end the loop like a half-close; a declared length tells them apart.
    // The undispatched tail is dropped; batches already committed stay (a live disk
    // write is not atomic, like a power cut during a write to a real disk).
    if (call.cancelled || (declared > 0 && received !== declared)) {
      await writer.abandon();
      throw new InvalidArgumentError(`write stream ended after ${received} of its declared length ${declared} bytes; the tail was not written`);
    }
    const r = await writer.end();
    return { bytesWritten: r.bytesWritten, gridOffset: r.gridOffset };
  } catch (e) {
    await writer?.abandon().catch(() => undefined);
    throw e;
  }
}
