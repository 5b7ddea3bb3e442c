export * from './gen/vmferry/v1/storage.js';
export { Empty } from './gen/google/protobuf/empty.js';
