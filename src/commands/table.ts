import { significant } from '../core/format.js';

/** A cell as a terminal table shows it: numbers to four significant digits, nothing for absent. */
export function cellText(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'number') return significant(value);
  if (typeof value === 'string') return value;
  return JSON.stringify(value);
}

/** A matrix value or param as written in the pipeline (β 0.5 stays 0.5). */
export function keyText(value: unknown): string {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

export interface TextTable {
  readonly text: string;
  /** Columns left out because the terminal is too narrow (in their order). */
  readonly omitted: readonly string[];
}

/**
 * Columns padded to their widest cell, numbers right-aligned. The first `keep` columns always
 * show (they say which row is which); later ones are left out, and listed, once the width is
 * used up. No width: every column.
 */
export function textTable(header: readonly string[], rows: readonly (readonly string[])[], width?: number, keep = 1): TextTable {
  const numeric = header.map(
    (_, c) => rows.length > 0 && rows.every((r) => r[c] === '' || /^[-+]?[\d.]+(e[-+]?\d+)?( ± [\d.e+-]+)?$/.test(r[c] ?? '')),
  );
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const shown: number[] = [];
  let used = 0;
  for (let c = 0; c < header.length; c++) {
    const needed = widths[c]! + (shown.length ? 2 : 0);
    if (c >= keep && width !== undefined && used + needed > width) break;
    shown.push(c);
    used += needed;
  }
  const line = (cells: readonly string[]) =>
    shown
      .map((c) => (numeric[c] ? (cells[c] ?? '').padStart(widths[c]!) : (cells[c] ?? '').padEnd(widths[c]!)))
      .join('  ')
      .trimEnd();
  return {
    text: [line(header), ...rows.map(line)].join('\n') + '\n',
    omitted: header.filter((_, c) => !shown.includes(c)),
  };
}
