/**
 * Option haggling (fixed newstyle), one option at a time: the client must wait for the final
 * reply to an option before sending the next, so this state needs no locking. It ends in
 * transmission (EXPORT_NAME, or GO answered with ACK) or in a close (ABORT, or an
 * EXPORT_NAME the server cannot satisfy, which proto.md says must end the session).
 *
 * TLS (proto.md, "TLS support"): a listener with TLS runs in FORCEDTLS mode. Before the
 * upgrade only STARTTLS and ABORT are served; every other option gets ERR_TLS_REQD, and
 * EXPORT_NAME (which cannot carry an error) ends the session. STARTTLS is answered with ACK
 * and the connection upgrades; negotiation then starts again from a fresh Negotiation, so
 * nothing chosen in plaintext carries over. A client whose certificate passed the handshake
 * but is not allowed gets ERR_POLICY with the reason on every option, so its user sees why.
 * A listener without TLS (NOTLS) answers STARTTLS with ERR_UNSUP.
 */
import { isVmferryError, type BlockExport, type BlockExports } from '@vmferry/core';
import { BASE_ALLOCATION, BASE_ALLOCATION_ID, INFO, MAX_PAYLOAD, OPT, REP, TFLAG } from './constants.js';
import {
  BadOptionData,
  decodeInfoRequest,
  decodeMetaContextRequest,
  encodeExportNameReply,
  encodeInfoBlockSize,
  encodeInfoExport,
  encodeMetaContext,
  encodeOptionReply,
  encodeServerEntry,
  type OptionFrame,
} from './handshake-codec.js';

/** What transmission needs from negotiation. */
export interface Agreed {
  readonly export: BlockExport;
  readonly structured: boolean;
  /** base:allocation was selected for this export: BLOCK_STATUS is allowed. */
  readonly allocationContext: boolean;
  readonly flags: number;
}

export type Outcome =
  | { readonly kind: 'continue'; readonly replies: readonly Buffer[] }
  | { readonly kind: 'close'; readonly replies: readonly Buffer[] }
  /** Send the replies (an ACK), then upgrade the connection to TLS. */
  | { readonly kind: 'starttls'; readonly replies: readonly Buffer[] }
  | { readonly kind: 'transmission'; readonly replies: readonly Buffer[]; readonly agreed: Agreed };

/**
 * Transmission flags of an export. CAN_MULTI_CONN holds because the backend keeps no
 * per-connection cache: a write is in the store before its reply, and a flush makes every
 * write acknowledged on any connection durable (block-export.ts).
 */
export function transmissionFlags(exp: BlockExport, structured: boolean): number {
  let flags = TFLAG.HAS_FLAGS | TFLAG.SEND_FLUSH | TFLAG.SEND_FUA | TFLAG.SEND_CACHE | TFLAG.CAN_MULTI_CONN;
  if (structured) flags |= TFLAG.SEND_DF;
  if (exp.readOnly) flags |= TFLAG.READ_ONLY;
  else flags |= TFLAG.SEND_TRIM | TFLAG.SEND_WRITE_ZEROES | TFLAG.SEND_FAST_ZERO;
  return flags;
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The connection's TLS state: 'none' (a listener without TLS), 'required' (FORCEDTLS, not
 * upgraded yet), 'secured' (upgraded, the client allowed) or a refusal (upgraded, but the
 * client's certificate is not allowed: the reason).
 */
export type TlsState = 'none' | 'required' | 'secured' | { readonly refused: string };

export class Negotiation {
  private structured = false;
  /** The export the last SET_META_CONTEXT selected base:allocation for, if it did. */
  private allocationFor: string | undefined;

  constructor(
    private readonly exports: BlockExports,
    private readonly noZeroes: boolean,
    private readonly tls: TlsState = 'none',
  ) {}

  async handle(frame: OptionFrame): Promise<Outcome> {
    const { option, data } = frame;
    const reply = (type: number, payload?: Buffer): Buffer => encodeOptionReply(option, type, payload);
    const error = (type: number, text: string): Outcome => ({ kind: 'continue', replies: [reply(type, Buffer.from(text, 'utf8'))] });
    const gate = this.tlsGate(option, data.length, error);
    if (gate) return gate;
    try {
      switch (option) {
        case OPT.EXPORT_NAME:
          return await this.exportName(data.toString('utf8'));
        case OPT.ABORT:
          return { kind: 'close', replies: [reply(REP.ACK)] };
        case OPT.LIST: {
          if (data.length > 0) return error(REP.ERR_INVALID, 'NBD_OPT_LIST takes no data');
          const names = await this.exports.list();
          return { kind: 'continue', replies: [...names.map((n) => reply(REP.SERVER, encodeServerEntry(n))), reply(REP.ACK)] };
        }
        case OPT.STRUCTURED_REPLY:
          if (data.length > 0) return error(REP.ERR_INVALID, 'NBD_OPT_STRUCTURED_REPLY takes no data');
          this.structured = true;
          return { kind: 'continue', replies: [reply(REP.ACK)] };
        case OPT.INFO:
        case OPT.GO:
          return await this.infoOrGo(option, data);
        case OPT.LIST_META_CONTEXT:
        case OPT.SET_META_CONTEXT:
          return await this.metaContext(option, data);
        case OPT.STARTTLS:
          if (this.tls === 'none') return error(REP.ERR_UNSUP, 'this NBD listener does not offer TLS');
          return error(REP.ERR_INVALID, 'TLS is already in use on this connection');
        default:
          return error(REP.ERR_UNSUP, `option ${option} is not supported by this server`);
      }
    } catch (e) {
      if (e instanceof BadOptionData) return error(REP.ERR_INVALID, e.message);
      if (isVmferryError(e) && e.code === 'not-found') return error(REP.ERR_UNKNOWN, e.message);
      return error(REP.ERR_INVALID, message(e));
    }
  }

  /** The outcome the TLS state forces for `option`, if it forces one (proto.md, FORCEDTLS mode). */
  private tlsGate(option: number, dataLength: number, error: (type: number, text: string) => Outcome): Outcome | undefined {
    const tls = this.tls;
    if (tls === 'none' || tls === 'secured' || option === OPT.ABORT) return undefined;
    // EXPORT_NAME cannot carry an error: the session must end.
    if (option === OPT.EXPORT_NAME) return { kind: 'close', replies: [] };
    if (tls !== 'required')
      return option === OPT.STARTTLS ? error(REP.ERR_INVALID, 'TLS is already in use on this connection') : error(REP.ERR_POLICY, tls.refused);
    if (option !== OPT.STARTTLS) return error(REP.ERR_TLS_REQD, 'this NBD server requires TLS (NBD_OPT_STARTTLS) before any other option');
    if (dataLength > 0) return error(REP.ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
    return { kind: 'starttls', replies: [encodeOptionReply(option, REP.ACK)] };
  }

  private async exportName(name: string): Promise<Outcome> {
    let exp: BlockExport;
    try {
      exp = await this.exports.open(name);
    } catch {
      // EXPORT_NAME cannot carry an error: the session must end.
      return { kind: 'close', replies: [] };
    }
    const flags = transmissionFlags(exp, this.structured);
    return {
      kind: 'transmission',
      replies: [encodeExportNameReply(exp.size, flags, this.noZeroes)],
      agreed: { export: exp, structured: this.structured, allocationContext: this.allocationFor === name, flags },
    };
  }

  private async infoOrGo(option: number, data: Buffer): Promise<Outcome> {
    const request = decodeInfoRequest(data);
    const exp = await this.exports.open(request.name);
    const flags = transmissionFlags(exp, this.structured);
    const replies = [encodeOptionReply(option, REP.INFO, encodeInfoExport(exp.size, flags))];
    if (request.requests.includes(INFO.BLOCK_SIZE)) {
      // Any byte is addressable (partial blocks are read-modify-written); whole blocks are efficient.
      const preferred = Math.min(MAX_PAYLOAD, Math.max(512, exp.preferredBlockSize));
      replies.push(encodeOptionReply(option, REP.INFO, encodeInfoBlockSize(1, preferred, MAX_PAYLOAD)));
    }
    replies.push(encodeOptionReply(option, REP.ACK));
    if (option === OPT.INFO) {
      await exp.close();
      return { kind: 'continue', replies };
    }
    return {
      kind: 'transmission',
      replies,
      agreed: { export: exp, structured: this.structured, allocationContext: this.allocationFor === request.name, flags },
    };
  }

  private async metaContext(option: number, data: Buffer): Promise<Outcome> {
    const set = option === OPT.SET_META_CONTEXT;
    // SET replaces the selection even when it fails.
    if (set) this.allocationFor = undefined;
    if (!this.structured) {
      return { kind: 'continue', replies: [encodeOptionReply(option, REP.ERR_INVALID, Buffer.from('negotiate structured replies first'))] };
    }
    const request = decodeMetaContextRequest(data);
    // The export must exist (UNKNOWN otherwise); nothing is kept open.
    await (await this.exports.open(request.name)).close();
    const matches = set
      ? request.queries.includes(BASE_ALLOCATION)
      : request.queries.length === 0 || request.queries.some((q) => q === 'base:' || q === BASE_ALLOCATION);
    const replies: Buffer[] = [];
    if (matches) replies.push(encodeOptionReply(option, REP.META_CONTEXT, encodeMetaContext(set ? BASE_ALLOCATION_ID : 0, BASE_ALLOCATION)));
    replies.push(encodeOptionReply(option, REP.ACK));
    if (set && matches) this.allocationFor = request.name;
    return { kind: 'continue', replies };
  }
}
