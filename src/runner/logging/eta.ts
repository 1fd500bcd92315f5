/**
 * Time left for a stage that reports how far it is (ctx.progress's fraction), as Keras shows
 * it: the rate since the first report, which leaves out the setup before the work starts
 * (loading data, building the model), applied to what remains.
 */
export class EtaEstimate {
  private first: { at: number; fraction: number } | undefined;

  /** Milliseconds left, or undefined until two reports with progress between them. */
  update(nowMs: number, fraction: number): number | undefined {
    if (!(fraction > 0 && fraction < 1)) return undefined;
    if (!this.first || fraction < this.first.fraction) {
      this.first = { at: nowMs, fraction };
      return undefined;
    }
    const done = fraction - this.first.fraction;
    if (done <= 0 || nowMs <= this.first.at) return undefined;
    return ((nowMs - this.first.at) / done) * (1 - fraction);
  }
}

/** `42 s`, `3 min 05 s`, `1 h 12 min`. */
export function formatEta(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min`;
}
