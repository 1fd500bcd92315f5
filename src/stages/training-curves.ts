import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { defineStage } from '../core/contract.js';
import { modelTitle } from '../ml/figures/titles.js';

/** Seed 002's figure 3: total loss, reconstruction (BCE or Gaussian NLL), KL and MMD per epoch, training and validation, one panel each. */
export default defineStage({
  name: 'training-curves',
  description: 'Training and validation loss, BCE and KL per epoch (PNG + Vega-Lite spec).',
  params: Type.Object({ title: Type.Optional(Type.String()) }, { additionalProperties: false }),
  inputs: { run: { description: 'a train-vae stage (its history.json)' } },
  outputs: () => ({ figure: 'curves.png', spec: 'curves.vl.json', svg: 'curves.svg' }),
  async run(ctx) {
    const { renderChart } = await import('../ml/figures/chart.js');
    const history = JSON.parse(readFileSync(join(ctx.input('run'), 'history.json'), 'utf8')) as Record<string, number>[];
    const runFile = join(ctx.input('run'), 'run.json');
    const params = existsSync(runFile)
      ? (JSON.parse(readFileSync(runFile, 'utf8')) as { params?: Record<string, unknown> }).params
      : undefined;
    // An autoencoder has no KL term: a panel of zeros would only look like a bug.
    const noKl = history.every((e) => !e.kl && !e.val_kl);
    // The reconstruction term as train-vae names it by likelihood; MMD for the WAE and InfoVAE.
    const [recon, reconKey] = history.some((e) => 'nll' in e) ? ['Gaussian NLL', 'nll'] : ['BCE', 'bce'];
    const hasMmd = history.some((e) => 'mmd' in e);
    const terms = ['loss', recon, ...(noKl ? [] : ['KL']), ...(hasMmd ? ['MMD'] : [])];
    const values = history.flatMap((e) =>
      [
        ['loss', 'train', e.loss],
        ['loss', 'validation', e.val_loss],
        [recon, 'train', e[reconKey]],
        [recon, 'validation', e[`val_${reconKey}`]],
        ['KL', 'train', e.kl],
        ['KL', 'validation', e.val_kl],
        ['MMD', 'train', e.mmd],
        ['MMD', 'validation', e.val_mmd],
      ]
        .filter(([term, , v]) => typeof v === 'number' && terms.includes(term as string))
        .map(([term, split, value]) => ({ epoch: e.epoch, term, split, value })),
    );
    await renderChart(
      {
        title:
          ctx.params.title ??
          `Training curves · ${params ? modelTitle({ kind: String(params.model), latentDim: Number(params.latent_dim) }, ctx.variant) : ctx.stageId}${noKl ? ' (no KL term)' : ''}`,
        data: { values },
        facet: { column: { field: 'term', type: 'nominal', title: null, sort: terms } },
        spec: {
          width: 220,
          height: 200,
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'epoch', type: 'quantitative', title: 'epoch', axis: { tickMinStep: 1 } },
            y: { field: 'value', type: 'quantitative', title: 'nats per image', scale: { zero: false } },
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
