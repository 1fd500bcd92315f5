/**
 * The executor's slots (cores, for the local pool), handed out in first-come order. A stage
 * asks for as many as it runs threads; one that wants more than the pool has gets the whole
 * pool (it then runs oversubscribed, but with the thread count its fingerprint records: the
 * count never depends on what is free).
 */
export class SlotPool {
  private free: number;
  private readonly waiters: { readonly count: number; readonly wake: () => void }[] = [];

  constructor(readonly size: number) {
    this.free = size;
  }

  /** Resolves once the slots are held; returns how many were taken (`wanted`, at most the pool's size). */
  async take(wanted: number): Promise<number> {
    const count = Math.min(Math.max(1, wanted), this.size);
    if (!this.waiters.length && this.free >= count) {
      this.free -= count;
      return count;
    }
    // give() takes the slots on the waiter's behalf before waking it.
    await new Promise<void>((wake) => this.waiters.push({ count, wake }));
    return count;
  }

  give(count: number): void {
    this.free += count;
    // Strict order: a stage that needs two slots is not starved by one-slot stages queued after it.
    while (this.waiters.length && this.waiters[0]!.count <= this.free) {
      const next = this.waiters.shift()!;
      this.free -= next.count;
      next.wake();
    }
  }
}
