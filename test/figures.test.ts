import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it, before } from 'node:test';
import { PNG } from 'pngjs';
import { annotateGrid, sweepTicks } from '../src/ml/figures/annotate.js';
import { gridPng } from '../src/ml/figures/grid.js';
import { readNpyAs } from '../src/ml/npy.js';
import { knnLabelAgreement, tsne } from '../src/ml/tsne.js';
import { seededRandom } from '../src/core/random.js';
import { inChromium, repoRoot, TempProject } from './helpers.js';

function decode(file: string): PNG {
  return PNG.sync.read(readFileSync(file));
}

/** Share of pixels that differ from the most common value: 0 for a blank image. */
function inkShare(png: PNG): number {
  const counts = new Map<number, number>();
  for (let i = 0; i < png.data.length; i += 4) counts.set(png.data[i]!, (counts.get(png.data[i]!) ?? 0) + 1);
  const most = Math.max(...counts.values());
  return 1 - most / (png.data.length / 4);
}

/**
 * An annotated grid: the grid (its size fixed by rows, columns and gaps; annotateGrid's own
 * test checks it is copied pixel for pixel) plus margins for a title and labels, never more
 * than a title's and an axis's worth.
 */
function assertFrames(png: PNG, gridWidth: number, gridHeight: number, message?: string): void {
  assert.ok(
    png.width >= gridWidth + 16 && png.width <= gridWidth + 420,
    `${message ?? ''} width ${png.width} for a ${gridWidth}-wide grid`,
  );
  assert.ok(
    png.height >= gridHeight + 30 && png.height <= gridHeight + 110,
    `${message ?? ''} height ${png.height} for a ${gridHeight}-high grid`,
  );
}

describe('image grids', () => {
  it('lays tiles out with separators, scaled', () => {
    // 3 tiles of 2×2: black, white, gray; 2 rows × 2 cols (one blank), scale 3, gap 1.
    const tiles = new Float32Array([0, 0, 0, 0, 1, 1, 1, 1, 0.5, 0.5, 0.5, 0.5]);
    const png = PNG.sync.read(
      gridPng({ tiles, tile: { rows: 2, cols: 2, channels: 1 }, rows: 2, cols: 2, scale: 3, gap: 1, separator: 200 }),
    );
    assert.deepEqual([png.width, png.height], [13, 13]);
    const at = (x: number, y: number) => png.data[(y * png.width + x) * 4]!;
    assert.equal(at(0, 0), 0);
    assert.equal(at(6, 0), 200, 'separator column');
    assert.equal(at(7, 5), 255, 'second tile');
    assert.equal(at(2, 6), 200, 'separator row');
    assert.equal(at(2, 7), 128, 'third tile (0.5 → 128)');
    assert.equal(at(10, 10), 0, 'missing tile is blank');
  });

  it('annotating copies the grid pixel for pixel and draws text around it', async () => {
    const tiles = new Float32Array(4 * 9).map((_, i) => (i % 7) / 6);
    const grid = gridPng({ tiles, tile: { rows: 3, cols: 3, channels: 1 }, rows: 2, cols: 2, scale: 4 });
    const plain = PNG.sync.read(grid);
    const { png, x, y } = await annotateGrid(grid, plain.width, plain.height, {
      title: 'Reconstructions · conv VAE, d = 2',
      columns: [{ at: 6, text: 'original' }],
      rows: [{ at: 6, text: '0' }],
      xAxis: { title: 'z₁', ticks: sweepTicks(-3, 3, 6, 19) },
    });
    const out = PNG.sync.read(png);
    for (let j = 0; j < plain.height; j++)
      for (let i = 0; i < plain.width; i++)
        assert.equal(out.data[((y + j) * out.width + x + i) * 4], plain.data[(j * plain.width + i) * 4], `pixel ${i},${j}`);
    let dark = 0;
    for (let j = 0; j < y; j++) for (let i = 0; i < out.width; i++) if (out.data[(j * out.width + i) * 4]! < 100) dark++;
    assert.ok(dark > 100, 'the title and header are drawn above the grid');
  });

  it('axis ticks are round values where they fall', () => {
    assert.deepEqual(
      sweepTicks(-3, 3, 0, 600, 100).map((m) => [Math.round(m.at), m.text]),
      [
        [0, '−3'],
        [100, '−2'],
        [200, '−1'],
        [300, '0'],
        [400, '1'],
        [500, '2'],
        [600, '3'],
      ],
    );
    assert.deepEqual(
      sweepTicks(3, -3, 0, 100).map((m) => [m.at, m.text]),
      [
        [100, '−3'],
        [50, '0'],
        [0, '3'],
      ],
      'fewer on a short axis; z₂ decreases downwards',
    );
  });
});

const PIPELINE = `pipeline: rep
stages:
  mnist: { uses: mnist, with: { limit_train: 200, limit_test: 100, validation: 0.2 } }
  prep: { uses: preprocess, in: { data: mnist } }
  train:
    uses: train-vae
    in: { data: prep }
    matrix: { latent_dim: [2, 3] }
    with: { latent_dim: "\${matrix.latent_dim}", epochs: 2, batch_size: 32, hidden: 16, backend: wasm }
  eval: { uses: evaluate, in: { model: train.model, data: prep }, with: { backend: wasm } }
  recon: { uses: reconstructions, in: { model: train.model, data: prep }, with: { per_digit: 2, backend: wasm } }
  samples: { uses: prior-samples, in: { model: train.model }, with: { rows: 4, cols: 5, backend: wasm } }
  interp: { uses: interpolations, in: { model: train.model, data: prep }, with: { pairs: 3, steps: 5, backend: wasm } }
  traverse: { uses: traversals, in: { model: train.model, data: prep }, with: { steps: 7, backend: wasm } }
  curves: { uses: training-curves, in: { run: train } }
  pca: { uses: pca, in: { latents: eval } }
  scatter: { uses: latent-scatter, in: { points: pca } }
  digits: { uses: variant-chart, in: { runs: "eval[*]" }, with: { x: digit, metrics: [mse, psnr], color: latent_dim } }
  elbo: { uses: variant-chart, in: { runs: "eval[*]" }, with: { x: latent_dim, metrics: [neg_elbo], mark: line } }
  report:
    uses: report
    in: { evaluation: "eval[*]", reconstructions: "recon[*]", samples: "samples[*]", curves: "curves[*]", latents: "scatter[*]", per_digit: digits, training: "train[*]" }
    with: { title: Tiny report }
`;

describe('figure stages, report and browser check', () => {
  const p = new TempProject({ 'pipelines/rep.yaml': PIPELINE });
  const art = (rel: string) => p.path(`artifacts/rep/${rel}`);
  before(async () => {
    const result = await p.run('pipelines/rep.yaml');
    assert.deepEqual(result.failed, [], JSON.stringify(result.events.filter((e) => e.type === 'failed')));
  });

  it('grids have the right size and are not blank', () => {
    const cell = 28 * 2;
    const recon = decode(art('recon/latent_dim=2/reconstructions.png'));
    // 10 rows of 3 bands × 2 columns; bands separated by 4-pixel gaps.
    assertFrames(recon, 6 * cell + 3 * 1 + 2 * 4, 10 * cell + 9);
    assert.ok(inkShare(recon) > 0.05);
    const samples = decode(art('samples/latent_dim=3/samples.png'));
    assertFrames(samples, 5 * cell + 4, 4 * cell + 3);
    const interp = decode(art('interp/latent_dim=2/interpolations.png'));
    assertFrames(interp, 7 * cell + 6, 3 * cell + 2);
    const traverse = decode(art('traverse/latent_dim=3/traversals.png'));
    assertFrames(traverse, 7 * cell + 6, 3 * cell + 2, 'one row per latent dimension');
    for (const png of [samples, interp, traverse]) assert.ok(inkShare(png) > 0.05);
  });

  it('charts are rendered with text, and keep their Vega-Lite spec', () => {
    for (const [dir, name] of [
      ['curves/latent_dim=2', 'curves'],
      ['scatter/latent_dim=3', 'scatter'],
      ['digits', 'chart'],
      ['elbo', 'chart'],
    ] as const) {
      const png = decode(art(`${dir}/${name}.png`));
      assert.ok(png.width > 300 && png.height > 200, `${dir} is ${png.width}×${png.height}`);
      assert.ok(inkShare(png) > 0.02, `${dir} looks blank`);
      const svg = readFileSync(art(`${dir}/${name}.svg`), 'utf8');
      assert.match(svg, /<text[^>]*>[^<]+<\/text>/, 'the SVG has text');
      const spec = JSON.parse(readFileSync(art(`${dir}/${name}.vl.json`), 'utf8')) as { $schema: string };
      assert.match(spec.$schema, /vega-lite/);
    }
    // Text survives rasterizing: the title region of the chart is not empty.
    const png = decode(art('digits/chart.png'));
    let dark = 0;
    for (let y = 0; y < 30; y++) for (let x = 0; x < 200; x++) if (png.data[(y * png.width + x) * 4]! < 100) dark++;
    assert.ok(dark > 50, 'the title was drawn');
    assert.match(readFileSync(art('digits/chart.svg'), 'utf8'), />mse, psnr by digit</);
  });

  it('a model that learned nothing is flagged: on its stage line, in the lockfile and atop the report', () => {
    // Two epochs on 200 images: the KL stays near zero (checked, not assumed).
    const metrics = JSON.parse(readFileSync(art('eval/latent_dim=2/metrics.json'), 'utf8')) as { kl: number; warnings?: string[] };
    assert.ok(metrics.kl < 0.5, `kl ${metrics.kl}`);
    assert.match(metrics.warnings?.[0] ?? '', /^posterior collapse: mean KL 0\.\d+ nats per image \(< 0\.5\)/);
    const lock = JSON.parse(readFileSync(p.path('pipelines/rep.lock.json'), 'utf8')) as { stages: Record<string, { warnings?: string[] }> };
    assert.deepEqual(lock.stages['eval[latent_dim=2]']!.warnings, metrics.warnings);
    assert.equal(lock.stages['train[latent_dim=2]']!.warnings, undefined);
    assert.match(readFileSync(art('report/report.html'), 'utf8'), /<p class="warning">⚠ eval\[latent_dim=2\]: posterior collapse/);
  });

  it('PCA coordinates and the projection record', () => {
    const coords = readNpyAs(art('pca/latent_dim=3/coords.npy'), 'float32');
    assert.deepEqual(coords.shape, [100, 2]);
    const info = JSON.parse(readFileSync(art('pca/latent_dim=3/projection.json'), 'utf8')) as {
      method: string;
      explained_variance: number[];
    };
    assert.equal(info.method, 'pca');
    assert.ok(info.explained_variance[0]! >= info.explained_variance[1]!);
  });

  it('report.html works offline in headless Chromium: no console errors, every image loads, a row per variant', async (t) => {
    const html = readFileSync(art('report/report.html'), 'utf8');
    assert.doesNotMatch(html, /(src|href)="https?:/, 'nothing is loaded from the network');
    await inChromium(t, async (page, errors) => {
      await page.goto(`file://${art('report/report.html')}`);
      // Charts with a Vega-Lite spec become live views; the grids stay PNGs.
      await page.waitForFunction(() => document.querySelectorAll('.chart.live').length === 5, null, { timeout: 30_000 });
      const images = await page.$$eval('img', (imgs) => imgs.map((i) => ({ ok: i.complete && i.naturalWidth > 0, alt: i.alt })));
      assert.equal(images.length, 2 + 2, 'recon and samples per variant');
      assert.deepEqual(
        images.filter((i) => !i.ok),
        [],
      );
      const captions = await page.$$eval('figcaption', (fs) => fs.map((f) => f.textContent));
      assert.ok(
        captions.includes('Images decoded from z drawn from the prior N(0, I) — latent_dim = 3 (samples[latent_dim=3])'),
        captions.join('\n'),
      );
      // Every table-of-contents link lands on an element.
      const targets = await page.$$eval('nav a', (as) =>
        as.map((a) => [a.getAttribute('href'), !!document.getElementById(a.getAttribute('href')!.slice(1))]),
      );
      assert.ok(targets.length >= 8, JSON.stringify(targets));
      assert.deepEqual(
        targets.filter(([, ok]) => !ok),
        [],
      );
      // Hovering a mark of a live chart shows its values.
      const bar = page.locator('.chart.live[data-spec*=per_digit] svg .role-mark.mark-rect path').first();
      await bar.scrollIntoViewIfNeeded();
      const box = (await bar.boundingBox())!;
      await page.mouse.move(box.x + box.width / 2, box.y + box.height - 2);
      await page.waitForSelector('#vg-tooltip-element.visible', { timeout: 10_000 });
      assert.match((await page.textContent('#vg-tooltip-element')) ?? '', /digit\s*0.*value/s);
      assert.match((await page.textContent('#run-info')) ?? '', /Last run .* UTC .* on .*cores/);
      const rows = await page.$$eval('#metrics-evaluation-table tbody tr', (trs) => trs.map((tr) => tr.querySelector('td')!.textContent));
      assert.deepEqual(rows, ['eval[latent_dim=2]', 'eval[latent_dim=3]']);
      // Sorting by a column reorders the rows.
      const header = page.locator('#metrics-evaluation-table th', { hasText: /^latent_dim$/ });
      await header.click();
      await header.click();
      const sorted = await page.$$eval('#metrics-evaluation-table tbody tr', (trs) => trs.map((tr) => tr.querySelector('td')!.textContent));
      assert.deepEqual(sorted, ['eval[latent_dim=3]', 'eval[latent_dim=2]']);
      assert.match((await page.textContent('body')) ?? '', /rerunning it gives this page byte for byte/);
      mkdirSync(join(repoRoot, 'test-results'), { recursive: true });
      await page.screenshot({ path: join(repoRoot, 'test-results', 'report.png'), fullPage: true });
      assert.deepEqual(errors, []);
    });
  });
});

describe('figures that need d = 2 or a conditional model', () => {
  it('manifold: an n × n grid without gaps; cvae samples: one row per class', async () => {
    const p = new TempProject({
      'pipelines/m.yaml': `pipeline: m
stages:
  mnist: { uses: mnist, with: { limit_train: 160, limit_test: 50 } }
  prep: { uses: preprocess, in: { data: mnist } }
  vae: { uses: train-vae, in: { data: prep }, with: { epochs: 1, batch_size: 32, hidden: 16, backend: wasm } }
  cvae: { uses: train-vae, in: { data: prep }, with: { model: cvae, epochs: 1, batch_size: 32, hidden: 16, backend: wasm } }
  manifold: { uses: manifold, in: { model: vae.model }, with: { n: 6, backend: wasm } }
  classes: { uses: prior-samples, in: { model: cvae.model }, with: { cols: 3, backend: wasm } }
  wide: { uses: train-vae, in: { data: prep }, with: { latent_dim: 3, epochs: 1, batch_size: 32, hidden: 16, backend: wasm } }
  bad: { uses: manifold, in: { model: wide.model }, with: { backend: wasm } }
`,
    });
    const result = await p.run('pipelines/m.yaml', { keepGoing: true });
    assert.deepEqual(result.failed, ['bad']);
    const failure = result.events.find((e) => e.type === 'failed');
    assert.match(failure?.type === 'failed' ? failure.message : '', /needs latent_dim 2; this model has 3/);
    const manifold = decode(p.path('artifacts/m/manifold/manifold.png'));
    assertFrames(manifold, 6 * 28, 6 * 28);
    assert.ok(inkShare(manifold) > 0.05);
    const classes = decode(p.path('artifacts/m/classes/samples.png'));
    assertFrames(classes, 3 * 56 + 2, 10 * 56 + 9);
  });
});

describe('projections', () => {
  const blobs = (n: number, seed: number) => {
    const random = seededRandom(seed);
    const data = new Float32Array(n * 8);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % 3;
      for (let d = 0; d < 8; d++) data[i * 8 + d] = (d === labels[i] ? 6 : 0) + (random() - 0.5);
    }
    return { data, labels };
  };

  it('umap (umap-js) separates clusters and repeats itself from the same seed', async () => {
    const { UMAP } = await import('umap-js');
    const { data, labels } = blobs(150, 5);
    const rows = Array.from({ length: 150 }, (_, i) => Array.from(data.subarray(i * 8, (i + 1) * 8)));
    const fit = (seed: number) =>
      Float32Array.from(new UMAP({ nComponents: 2, nNeighbors: 10, random: seededRandom(seed) }).fit(rows).flat());
    const a = fit(1);
    assert.ok(knnLabelAgreement(a, 150, 2, labels) > 0.98);
    assert.deepEqual(fit(1), a);
  });

  it('pca puts the direction of largest variance first', async () => {
    const { PCA } = await import('ml-pca');
    // Points on the line y = 2x with small noise: one component explains nearly everything.
    const random = seededRandom(2);
    const rows = Array.from({ length: 200 }, (_, i) => [i / 10, (2 * i) / 10 + (random() - 0.5) * 0.01, (random() - 0.5) * 0.01]);
    const pca = new PCA(rows, { method: 'covarianceMatrix' });
    assert.ok(pca.getExplainedVariance()[0]! > 0.9999);
    const [first] = pca.getEigenvectors().transpose().to2DArray();
    assert.ok(Math.abs(Math.abs(first![1]! / first![0]!) - 2) < 1e-3);
  });
});

describe('t-SNE', () => {
  /** Gaussian blobs in 16-D: `clusters` of them, well apart. */
  function blobs(n: number, clusters: number, seed: number) {
    const random = seededRandom(seed);
    const data = new Float32Array(n * 16);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % clusters;
      for (let d = 0; d < 16; d++) {
        const u = Math.max(random(), 1e-12);
        data[i * 16 + d] = (d === labels[i] ? 8 : 0) + Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
      }
    }
    return { data, labels };
  }

  it('keeps separated clusters separated, and is reproducible from its seed, on one thread or three', async () => {
    const { data, labels } = blobs(400, 4, 1);
    const run = (seed: number, threads = 1) =>
      tsne(data, 400, 16, { perplexity: 20, iterations: 500, theta: 0.5, random: seededRandom(seed), threads });
    const a = await run(3);
    assert.ok(knnLabelAgreement(a, 400, 2, labels) > 0.98);
    // Cluster centres in the embedding are far apart relative to the clusters' spread.
    const centre = (c: number) =>
      [0, 1].map(
        (d) =>
          Array.from(labels.keys())
            .filter((i) => labels[i] === c)
            .reduce((s, i) => s + a[2 * i + d]!, 0) / 100,
      );
    const spread = Math.sqrt(
      Array.from(labels.keys()).reduce(
        (s, i) => s + (a[2 * i]! - centre(labels[i]!)[0]!) ** 2 + (a[2 * i + 1]! - centre(labels[i]!)[1]!) ** 2,
        0,
      ) / 400,
    );
    const [c0, c1] = [centre(0), centre(1)];
    assert.ok(Math.hypot(c0[0]! - c1[0]!, c0[1]! - c1[1]!) > 3 * spread);
    assert.deepEqual(await run(3), a);
    assert.deepEqual(await run(3, 3), a, 'worker threads change the speed, not the bytes');
    assert.notDeepEqual(await run(4), a);
  });
});
