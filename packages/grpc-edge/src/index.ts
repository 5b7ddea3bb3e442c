/*
 * The gRPC edge: the only package that imports @grpc/grpc-js and the generated wire code.
 * Everything above it (services, CLI) speaks core types and core errors.
 */
export * from './errors.js';
export * from './streams.js';
export * from './listen.js';
export * from './client/index.js';
export * from './server/index.js';
