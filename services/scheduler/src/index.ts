export { Scheduler, TICK_MS, type SchedulerOptions, type TickReport } from './scheduler.js';
export { PolicyView } from './policy-view.js';
