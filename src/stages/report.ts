import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { chartLibraries } from '../report/chart-scripts.js';
import type { Figure, MetricsRow, TrainingRun } from '../report/page.js';
import { defineStage, type GatheredInput } from '../core/contract.js';

/** What each figure-drawing kind's PNG shows, for its caption. */
const CAPTIONS: Readonly<Record<string, string>> = {
  reconstructions: 'Test images per digit: the original, decoded from a sampled z, and decoded from z = μ',
  'prior-samples': 'Images decoded from z drawn from the prior N(0, I)',
  interpolations: 'Decodings along straight lines in latent space between pairs of test images',
  traversals: 'One latent dimension swept at a time (rows), the others held at a test image’s μ',
  manifold: 'The 2-D latent space decoded on a grid of Gaussian quantiles',
  'training-curves': 'Loss, BCE and KL per epoch (training, and validation where there is one)',
  'latent-scatter': 'Test-set latent means projected to 2-D, coloured by digit',
  'variant-chart': 'Metrics across the variants of the ablation',
};

/**
 * report.html for a pipeline: a metrics table per input (sortable; with replicates, mean ±
 * 95 % CI per configuration), every PNG of its inputs with a caption (charts live, from their
 * Vega-Lite specs), training run info, and the stage graph. Bind whatever should appear:
 * `in: { metrics: "eval[*]", recon: "recon[*]", … }` — each input name becomes a section.
 */
export default defineStage({
  name: 'report',
  description: 'One self-contained, offline report.html of metrics, figures, runs and the DAG, with interactive charts.',
  params: Type.Object(
    {
      title: Type.String({ default: 'ablate report' }),
      over: Type.Optional(
        Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1 })], {
          description: 'Replicate matrix key(s), e.g. seed: every metrics table gets a mean ± 95 % CI table per configuration.',
        }),
      ),
    },
    { additionalProperties: false },
  ),
  inputs: 'any',
  outputs: () => ({ report: 'report.html' }),
  async run(ctx) {
    const { renderReport } = await import('../report/page.js');
    // A gathered input's items are instance ids; a single input is named by its input name, usually its stage's.
    const kinds = new Map([
      ...ctx.provenance.map((p) => [p.stage, p.kind] as const),
      ...ctx.provenance.map((p) => [p.id, p.kind] as const),
    ]);
    const metrics: MetricsRow[] = [];
    const warnings: string[] = [];
    const figures: Figure[] = [];
    const training: TrainingRun[] = [];
    for (const [section, bound] of Object.entries(ctx.inputs)) {
      const items: readonly GatheredInput[] = typeof bound === 'string' ? [{ id: section, variant: {}, path: bound }] : bound;
      for (const item of items) {
        const metricsFile = join(item.path, 'metrics.json');
        if (existsSync(metricsFile)) {
          const m = JSON.parse(readFileSync(metricsFile, 'utf8')) as Record<string, unknown>;
          // A stage's own warnings (evaluate's posterior-collapse check) go above everything.
          if (Array.isArray(m.warnings)) warnings.push(...m.warnings.filter((w) => typeof w === 'string').map((w) => `${item.id}: ${w}`));
          metrics.push({
            section,
            id: item.id,
            variant: item.variant,
            metrics: Object.fromEntries(Object.entries(m).filter((e): e is [string, number] => typeof e[1] === 'number')),
          });
        }
        const runFile = join(item.path, 'run.json');
        if (existsSync(runFile)) training.push(trainingRun(item.id, runFile));
        for (const file of ctx.listFiles(item.path).filter((f) => f.endsWith('.png'))) {
          const specFile = join(item.path, file.replace(/\.png$/, '.vl.json'));
          // A single input's folder is artifacts/<pipeline>/<stage>[/<variant>].
          const kind = kinds.get(item.id) ?? kinds.get(basename(item.path)) ?? kinds.get(basename(dirname(item.path))) ?? '';
          figures.push({
            section,
            id: item.id,
            variant: item.variant,
            file,
            caption: CAPTIONS[kind] ?? file,
            png: readFileSync(join(item.path, file)),
            ...(existsSync(specFile) ? { spec: JSON.parse(readFileSync(specFile, 'utf8')) as unknown } : {}),
          });
        }
      }
    }
    const over = ctx.params.over === undefined ? [] : typeof ctx.params.over === 'string' ? [ctx.params.over] : ctx.params.over;
    const html = renderReport({
      title: ctx.params.title,
      metrics,
      figures,
      training,
      provenance: ctx.provenance,
      provenanceTree: ctx.provenanceTree,
      replicates: over,
      // artifacts/<pipeline>/<stage>/[<variant>/]report.html; the runner writes artifacts/<pipeline>/run-info.js.
      runInfoSrc: Object.keys(ctx.variant).length ? '../../run-info.js' : '../run-info.js',
      chartScripts: chartLibraries(),
      warnings,
    });
    writeFileSync(join(ctx.outDir, 'report.html'), html);
    ctx.progress(`${metrics.length} metrics rows, ${figures.length} figures`);
  },
});

function trainingRun(id: string, runFile: string): TrainingRun {
  const r = JSON.parse(readFileSync(runFile, 'utf8')) as {
    backend: string;
    versions: Record<string, string>;
    train_images: number;
    best_epoch: number;
    params: Record<string, unknown>;
  };
  return { id, params: r.params, backend: r.backend, versions: r.versions, images: r.train_images, bestEpoch: r.best_epoch };
}
