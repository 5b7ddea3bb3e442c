/** A FIFO async mutex. */
export class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise((r) => (release = r));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/**
 * A fair readers-writer lock (FIFO: a waiting `exclusive` holds back later `shared` callers, so
 * a writer is never starved). The storage node uses one per VM (live writes commit under
 * `shared`; snapshots, restores and deletes under `exclusive`) and one per chunk store (GC's
 * sweep against writers that commit references to chunks they found present).
 */
export class RwLock {
  private readers = 0;
  private writer = false;
  private readonly waiting: { exclusive: boolean; wake: () => void }[] = [];

  private pump(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0] as { exclusive: boolean; wake: () => void };
      if (next.exclusive ? this.writer || this.readers > 0 : this.writer) return;
      this.waiting.shift();
      if (next.exclusive) this.writer = true;
      else this.readers++;
      next.wake();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    return new Promise((wake) => {
      this.waiting.push({ exclusive, wake });
      this.pump();
    });
  }

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await fn();
    } finally {
      this.readers--;
      this.pump();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await fn();
    } finally {
      this.writer = false;
      this.pump();
    }
  }
}
