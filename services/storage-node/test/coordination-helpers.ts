export { JOBS_STREAM, openCoordination, publishJob, snapshotJobSubject, type Coordination, type SnapshotJob } from '@vmferry/nats';
export { slotJobId as slotJobIdFor } from '@vmferry/core';
