import { SingleBar, Presets } from 'cli-progress';
import { formatBytes } from '@vmferry/core';

export interface Progress {
  update(done: number): void;
  stop(): void;
}

/** A byte progress bar on stderr when it is a terminal (and not --json); otherwise silent. */
export function byteProgress(label: string, total: number, enabled: boolean): Progress {
  if (!enabled || !process.stderr.isTTY) return { update: () => undefined, stop: () => undefined };
  const bar = new SingleBar(
    {
      stream: process.stderr,
      format: `${label} [{bar}] {percentage}% | {doneH} / {totalH} | {rate}/s | ETA {eta_formatted}`,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(total, 0, { doneH: formatBytes(0), totalH: formatBytes(total), rate: '0 B' });
  return {
    update: (done) => {
      const secs = Math.max(0.001, (Date.now() - started) / 1000);
      bar.update(done, { doneH: formatBytes(done), totalH: formatBytes(total), rate: formatBytes(Math.round(done / secs)) });
    },
    stop: () => bar.stop(),
  };
}
