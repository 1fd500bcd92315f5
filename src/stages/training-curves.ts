import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { defineStage } from '../core/contract.js';

/** Seed 002's figure 3: total loss, BCE and KL per epoch, training and validation, one panel each. */
export default defineStage({
  name: 'training-curves',
  description: 'Training and validation loss, BCE and KL per epoch (PNG + Vega-Lite spec).',
  params: Type.Object({ title: Type.Optional(Type.String()) }, { additionalProperties: false }),
  inputs: { run: { description: 'a train-vae stage (its history.json)' } },
  outputs: () => ({ figure: 'curves.png', spec: 'curves.vl.json', svg: 'curves.svg' }),
  async run(ctx) {
    const { renderChart } = await import('../ml/figures/chart.js');
    const history = JSON.parse(readFileSync(join(ctx.input('run'), 'history.json'), 'utf8')) as Record<string, number>[];
    const values = history.flatMap((e) =>
      [
        ['loss', 'train', e.loss],
        ['loss', 'validation', e.val_loss],
        ['BCE', 'train', e.bce],
        ['BCE', 'validation', e.val_bce],
        ['KL', 'train', e.kl],
        ['KL', 'validation', e.val_kl],
      ]
        .filter(([, , v]) => typeof v === 'number')
        .map(([term, split, value]) => ({ epoch: e.epoch, term, split, value })),
    );
    await renderChart(
      {
        title: ctx.params.title ?? 'Training curves',
        data: { values },
        facet: { column: { field: 'term', type: 'nominal', title: null, sort: ['loss', 'BCE', 'KL'] } },
        spec: {
          width: 220,
          height: 200,
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
            y: { field: 'value', type: 'quantitative', title: 'per image', scale: { zero: false } },
            color: { field: 'split', type: 'nominal', title: null },
          },
        },
        resolve: { scale: { y: 'independent' } },
      },
      ctx.outDir,
      'curves',
    );
  },
});
