/** The part of jStat (no bundled types) that src/core/stats.ts uses. */
declare module 'jstat' {
  interface StudentT {
    /** P(T ≤ x) for T ~ t(df). */
    cdf(x: number, df: number): number;
    /** The p quantile of t(df). */
    inv(p: number, df: number): number;
  }
  const jStat: { readonly studentt: StudentT };
  export default jStat;
}
