export { startNodeProcess, VMFERRY_BIN, type NodeProcess, type NodeProcessOptions } from './node-process.js';
export { runCli, cliJson, type CliResult } from './cli.js';
export { buildExtImage, makeContentTree, sha256File, type ExtImageOptions } from './disk-images.js';
export { createTwoSiteNet, type TwoSiteNet } from './netns.js';
export { MINT_CERTS, mintCerts, startSite, pairSites, seededBytes, writeDisk, exportSha, type Site } from './replication-sites.js';
export { startDelayProxy, type DelayProxy } from './delay-proxy.js';
export { startNatsServer, natsServerBinary, freePort, type NatsServer, type NatsOptions } from './nats-server.js';
export { mintCertWithDates } from './odd-certs.js';
export { Rng } from './random.js';
