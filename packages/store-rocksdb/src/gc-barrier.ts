import { FailedPreconditionError, RwLock, toHex, type Fingerprint } from '@vmferry/core';

/**
 * What a running garbage collection needs from every writer (the write barrier).
 *
 * - `referencing(fn)`: a section in which a writer checks that chunks exist and then commits
 *   references to them. GC's sweep deletes only between such sections (it takes the lock
 *   exclusively per batch), so a chunk found present inside a section is still present when
 *   the section commits.
 * - `record(ids)`: ids that were checked, written or newly referenced while a GC runs. Before
 *   each sweep batch GC drains them and keeps each one, with the whole subtree of each tree
 *   node among them.
 *
 * Sections must not nest: the lock is fair, so a nested `shared` behind a waiting sweep
 * would deadlock.
 */
export class GcBarrier {
  private readonly lock = new RwLock();
  private recorded: Set<string> | undefined;

  /** Runs `fn` with the sweep held off: chunks found present in `fn` stay present until it ends. */
  referencing<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.shared(fn);
  }

  /** Runs one sweep batch (or the start of a run): no `referencing` section runs meanwhile. */
  sweeping<T>(fn: () => Promise<T>): Promise<T> {
    return this.lock.exclusive(fn);
  }

  /** Records `ids` for the running collection (nothing when none runs). */
  record(ids: Iterable<Fingerprint>): void {
    if (!this.recorded) return;
    for (const id of ids) this.recorded.add(toHex(id));
  }

  /** Starts recording for a GC run. Call inside `sweeping`, with the GC taking its root list. */
  begin(): void {
    if (this.recorded) throw new FailedPreconditionError('a garbage collection is already running on this store');
    this.recorded = new Set();
  }

  /** The ids recorded since the last drain (hex), and recording goes on. */
  drain(): string[] {
    const out = [...(this.recorded ?? [])];
    if (this.recorded) this.recorded = new Set();
    return out;
  }

  end(): void {
    this.recorded = undefined;
  }
}
