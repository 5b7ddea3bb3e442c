/*
 * The generated code maps int64/uint64 to `number` (forceLong=number: sizes and offsets are
 * numbers everywhere), so a value ≥ 2^53 cannot be decoded and grpc-js reports only
 * INTERNAL "Error deserializing request". This finds which field it was, by re-reading the
 * bytes with the schema (embedded by gen:proto) into bigints, so the node can answer
 * INVALID_ARGUMENT naming the field instead.
 */
import { createFileRegistry, fromBinary, ScalarType, type DescMessage, type FileRegistry } from '@bufbuild/protobuf';
import { isReflectList, isReflectMessage, reflect, type ReflectMessage } from '@bufbuild/protobuf/reflect';
import { FileDescriptorSetSchema } from '@bufbuild/protobuf/wkt';
import { DESCRIPTOR_SET_BASE64 } from './gen/descriptor-set.js';

const INT64 = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

let registry: FileRegistry | undefined;
function schema(): FileRegistry {
  registry ??= createFileRegistry(fromBinary(FileDescriptorSetSchema, Buffer.from(DESCRIPTOR_SET_BASE64, 'base64')));
  return registry;
}

/** The request message of `service`'s method `localName` (e.g. 'vmferry.v1.StorageNode', 'importVm'). */
export function requestTypeOf(service: string, localName: string): DescMessage | undefined {
  return schema()
    .getService(service)
    ?.methods.find((m) => m.localName === localName)?.input;
}

function unsafe(v: unknown): boolean {
  return typeof v === 'bigint' && (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER));
}

function walk(m: ReflectMessage, prefix: string): { field: string; value: string } | undefined {
  for (const f of m.sortedFields) {
    if (!m.isSet(f)) continue;
    const name = prefix + f.name;
    const v: unknown = m.get(f);
    if (f.fieldKind === 'scalar' && INT64.has(f.scalar) && unsafe(v)) return { field: name, value: String(v) };
    if (f.fieldKind === 'message' && isReflectMessage(v)) {
      const hit = walk(v, `${name}.`);
      if (hit) return hit;
    }
    if (f.fieldKind === 'list' && isReflectList(v)) {
      let i = 0;
      for (const item of v) {
        if (f.listKind === 'scalar' && INT64.has(f.scalar) && unsafe(item)) return { field: `${name}[${i}]`, value: String(item) };
        if (isReflectMessage(item)) {
          const hit = walk(item, `${name}[${i}].`);
          if (hit) return hit;
        }
        i++;
      }
    }
  }
  return undefined;
}

/**
 * The first 64-bit integer field of `bytes` (a `type` message) that is outside the safe
 * integer range, as a path of proto field names (`header.disks[0].size`), with its value;
 * undefined when there is none or the bytes do not parse at all.
 */
export function findUnsafeInt64(type: DescMessage, bytes: Uint8Array): { field: string; value: string } | undefined {
  try {
    return walk(reflect(type, fromBinary(type, bytes)), '');
  } catch {
    return undefined;
  }
}
