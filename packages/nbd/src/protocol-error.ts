import { InvalidArgumentError } from '@vmferry/core';

/**
 * The peer broke a MUST of the protocol (bad magic, an oversized payload, unknown client
 * flags): the server answers nothing more and drops that one connection (a hard disconnect,
 * which proto.md allows on a violation of a mandatory condition).
 */
export class NbdProtocolError extends InvalidArgumentError {}
