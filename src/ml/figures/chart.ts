/**
 * Charts as Vega-Lite specs rendered in Node: vega-lite compiles the spec, vega renders SVG
 * (no browser), resvg rasterizes it to PNG in DejaVu Sans (fonts.ts). The spec is kept beside
 * the image.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { resvgFontOptions } from './fonts.js';

/** A Vega-Lite spec (kept loose: specs are data, checked by vega-lite itself). */
export type VegaLiteSpec = Record<string, unknown>;

/** The look shared by every chart: white background, readable sizes, one font. */
const CONFIG = {
  background: 'white',
  font: 'DejaVu Sans',
  title: { fontSize: 15 },
  axis: { labelFontSize: 12, titleFontSize: 13, grid: true },
  legend: { labelFontSize: 12, titleFontSize: 13 },
  header: { labelFontSize: 13, titleFontSize: 13 },
};

/** Writes `<name>.vl.json`, `<name>.svg` and `<name>.png` into `dir`. */
export async function renderChart(spec: VegaLiteSpec, dir: string, name: string): Promise<void> {
  const font = resvgFontOptions();
  const full = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', config: CONFIG, ...spec };
  const vegaLite = await import('vega-lite');
  const vega = await import('vega');
  const compiled = vegaLite.compile(full as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  const { Resvg } = await import('@resvg/resvg-js');
  const png = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: 2 },
    font,
  })
    .render()
    .asPng();
  writeFileSync(join(dir, `${name}.vl.json`), JSON.stringify(full, null, 2) + '\n');
  writeFileSync(join(dir, `${name}.svg`), svg);
  writeFileSync(join(dir, `${name}.png`), png);
}
