export * from './constants.js';
export { ByteQueue } from './byte-queue.js';
export { NbdProtocolError } from './protocol-error.js';
export * from './handshake-codec.js';
export * from './transmission-codec.js';
export { ERRNO_OF, errnoOf } from './errno.js';
export { transmissionFlags, type Agreed } from './negotiation.js';
export { startNbdServer, type NbdServerOptions, type RunningNbdServer } from './server.js';
