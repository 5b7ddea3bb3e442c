export { Scheduler, TICK_MS, type SchedulerOptions, type TickReport } from './scheduler.js';
export { PolicyView } from './policy-view.js';
export { loadConfig, configFromEnv, type SchedulerConfig } from './config.js';
export { runScheduler, type RunningScheduler, type RunSchedulerOptions } from './main.js';
