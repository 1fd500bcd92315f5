import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { Figure, MetricsRow, TrainingRun } from '../report/page.js';
import { defineStage, type GatheredInput } from '../core/contract.js';

/**
 * report.html for a pipeline: a metrics table across every variant (sortable), every PNG of
 * its inputs, training run info (backend, versions, time), which stages ran or came from the
 * cache, and the stage graph. Bind whatever should appear: `in: { metrics: "eval[*]",
 * recon: "recon[*]", … }` — each input name becomes a section.
 */
export default defineStage({
  name: 'report',
  description: 'One self-contained, offline report.html of metrics, figures, runs and the DAG.',
  params: Type.Object({ title: Type.String({ default: 'ablate report' }) }, { additionalProperties: false }),
  inputs: 'any',
  outputs: () => ({ report: 'report.html' }),
  async run(ctx) {
    const { renderReport } = await import('../report/page.js');
    const metrics: MetricsRow[] = [];
    const figures: Figure[] = [];
    const training: TrainingRun[] = [];
    for (const [section, bound] of Object.entries(ctx.inputs)) {
      const items: readonly GatheredInput[] = typeof bound === 'string' ? [{ id: section, variant: {}, path: bound }] : bound;
      for (const item of items) {
        const metricsFile = join(item.path, 'metrics.json');
        if (existsSync(metricsFile)) {
          const m = JSON.parse(readFileSync(metricsFile, 'utf8')) as Record<string, unknown>;
          metrics.push({
            section,
            id: item.id,
            variant: item.variant,
            metrics: Object.fromEntries(Object.entries(m).filter((e): e is [string, number] => typeof e[1] === 'number')),
          });
        }
        const runFile = join(item.path, 'run.json');
        if (existsSync(runFile)) {
          const r = JSON.parse(readFileSync(runFile, 'utf8')) as {
            backend: string;
            versions: Record<string, string>;
            train_images: number;
            best_epoch: number;
            params: Record<string, unknown>;
          };
          training.push({
            id: item.id,
            params: r.params,
            backend: r.backend,
            versions: r.versions,
            images: r.train_images,
            bestEpoch: r.best_epoch,
          });
        }
        for (const file of ctx.listFiles(item.path).filter((f) => f.endsWith('.png'))) {
          figures.push({ section, id: item.id, file, png: readFileSync(join(item.path, file)) });
        }
      }
    }
    const html = renderReport({
      title: ctx.params.title,
      metrics,
      figures,
      training,
      provenance: ctx.provenance,
      provenanceTree: ctx.provenanceTree,
    });
    writeFileSync(join(ctx.outDir, 'report.html'), html);
    ctx.progress(`${metrics.length} metrics rows, ${figures.length} figures`);
  },
});
