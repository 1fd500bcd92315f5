/**
 * Text around an image grid, so a figure reads at a glance: a title naming the model, headers
 * over column groups (original | sampled z | z = μ), labels beside rows (the digit, the latent
 * dimension) and axes with values (z₁ and z₂ on the manifold). The grid PNG goes into an SVG
 * as an <image> at its own size (no resampling) with the text around it, and resvg rasterizes
 * it in DejaVu Sans, as the charts are.
 */
import { resvgFontOptions } from './fonts.js';

/** A label at a position along the grid's width or height, in grid pixels. */
export interface Mark {
  readonly at: number;
  readonly text: string;
}

export interface Annotation {
  readonly title: string;
  /** Above the grid, centred on `at` (e.g. the middle of a column group). */
  readonly columns?: readonly Mark[];
  /** Left of the grid, centred on `at`. */
  readonly rows?: readonly Mark[];
  /** Below the grid: tick values and the axis name. */
  readonly xAxis?: { readonly title: string; readonly ticks: readonly Mark[] };
  /** Left of the rows: tick values and the axis name (written upwards). */
  readonly yAxis?: { readonly title: string; readonly ticks: readonly Mark[] };
}

const TITLE = 15;
const LABEL = 12;
/** DejaVu Sans is about this wide per character, in em: enough to size the margins. */
const CHAR_EM = 0.56;
/** Bold titles run wider. */
const BOLD_EM = 0.62;
const PAD = 8;

const esc = (text: string) => text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
const textWidth = (text: string, size: number, em = CHAR_EM) => text.length * size * em;

/** The annotated PNG, and where the grid's top-left pixel landed in it (whole pixels: the grid is not resampled). */
export async function annotateGrid(
  grid: Buffer,
  width: number,
  height: number,
  a: Annotation,
): Promise<{ png: Buffer; x: number; y: number }> {
  const rowLabels = a.rows ?? [];
  const yTicks = a.yAxis?.ticks ?? [];
  const left = Math.ceil(
    PAD +
      (a.yAxis ? LABEL + PAD : 0) +
      Math.max(0, ...[...rowLabels, ...yTicks].map((m) => textWidth(m.text, LABEL))) +
      (rowLabels.length || yTicks.length ? PAD : 0),
  );
  const top = PAD + TITLE + PAD + (a.columns?.length ? LABEL + PAD / 2 : 0);
  const bottom = PAD + (a.xAxis ? 2 * (LABEL + PAD / 2) : 0);
  const contentWidth = Math.max(width, textWidth(a.title, TITLE, BOLD_EM) - left + PAD);
  const W = Math.ceil(left + contentWidth + PAD);
  const H = Math.ceil(top + height + bottom);
  const text = (x: number, y: number, s: string, attrs: string) =>
    `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
  const parts = [
    `<rect width="${W}" height="${H}" fill="white"/>`,
    text(PAD, PAD + TITLE, a.title, `font-size="${TITLE}" font-weight="bold"`),
    ...(a.columns ?? []).map((m) => text(left + m.at, top - PAD / 2, m.text, `font-size="${LABEL}" text-anchor="middle"`)),
    ...[...rowLabels, ...yTicks].map((m) => text(left - PAD, top + m.at + LABEL / 3, m.text, `font-size="${LABEL}" text-anchor="end"`)),
    `<image x="${left}" y="${top}" width="${width}" height="${height}" href="data:image/png;base64,${grid.toString('base64')}" image-rendering="optimizeSpeed"/>`,
  ];
  if (a.xAxis) {
    for (const m of a.xAxis.ticks) {
      parts.push(`<line x1="${left + m.at}" x2="${left + m.at}" y1="${top + height}" y2="${top + height + 4}" stroke="#444"/>`);
      parts.push(text(left + m.at, top + height + PAD / 2 + LABEL, m.text, `font-size="${LABEL}" text-anchor="middle"`));
    }
    parts.push(
      text(
        left + width / 2,
        top + height + 2 * (LABEL + PAD / 2),
        a.xAxis.title,
        `font-size="${LABEL}" font-weight="bold" text-anchor="middle"`,
      ),
    );
  }
  if (a.yAxis) {
    for (const m of a.yAxis.ticks) parts.push(`<line x1="${left - 4}" x2="${left}" y1="${top + m.at}" y2="${top + m.at}" stroke="#444"/>`);
    const x = PAD + LABEL;
    const y = top + height / 2;
    parts.push(text(x, y, a.yAxis.title, `font-size="${LABEL}" font-weight="bold" text-anchor="middle" transform="rotate(-90 ${x} ${y})"`));
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans" fill="#222">${parts.join('')}</svg>`;
  const { Resvg } = await import('@resvg/resvg-js');
  return { png: Buffer.from(new Resvg(svg, { font: resvgFontOptions() }).render().asPng()), x: left, y: top };
}

/**
 * Axis ticks for a sweep of values from `from` (at pixel `first`) to `to` (at pixel `last`):
 * round values (steps of 1, 2, 2.5, 3 or 5 times a power of ten; 3 keeps ±3 on a short axis) placed where they fall between the
 * two, at most one per `spacing` pixels, as a plotting library would.
 */
export function sweepTicks(from: number, to: number, first: number, last: number, spacing = 45): Mark[] {
  const most = Math.max(2, Math.floor(Math.abs(last - first) / spacing) + 1);
  const span = Math.abs(to - from);
  const raw = span / (most - 1);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 3, 5, 10].map((m) => m * power).find((s) => s >= raw - 1e-9)!;
  const lo = Math.min(from, to);
  const marks: Mark[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= lo + span + 1e-9; v += step) {
    marks.push({ at: first + ((v - from) / (to - from)) * (last - first), text: formatTick(v) });
  }
  return marks;
}

function formatTick(v: number): string {
  const r = Math.round(v * 1000) / 1000;
  return (r === 0 ? 0 : r).toString().replace('-', '−');
}
