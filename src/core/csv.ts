/** RFC 4180: quote what holds a comma, a quote or a line break. */
export function csvLine(cells: readonly string[]): string {
  return cells.map((v) => (/[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v)).join(',');
}
