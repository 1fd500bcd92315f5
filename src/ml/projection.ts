/**
 * What the projection stages share: read an evaluate stage's test latents (μ) and labels,
 * subsample them (stratified, seeded), project to 2-D, and write coords.npy, labels.npy and
 * projection.json (method, sizes, 10-NN label agreement before and after, method extras).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { StageError, type StageContext } from '../core/contract.js';
import { encodeNpy, readNpyAs } from './npy.js';
import { classNamesIn } from './dataset.js';
import { stratifiedSample } from './sampling.js';
import { knnLabelAgreement } from './tsne.js';

export const SubsampleParam = Type.Optional(
  Type.Integer({ minimum: 10, description: 'Project this many test points (stratified, seeded); default: all.' }),
);

export interface Latents {
  readonly data: Float32Array;
  readonly labels: Uint8Array;
  readonly count: number;
  readonly dims: number;
}

function readLatents(dir: string, subsample: number | undefined, random: () => number): Latents {
  const mu = readNpyAs(join(dir, 'latent_mu.npy'), 'float32');
  const labels = readNpyAs(join(dir, 'labels.npy'), 'uint8');
  const [count, dims] = mu.shape as [number, number];
  if (count < 3) throw new StageError(`only ${count} latent points to project`);
  const picked = stratifiedSample(labels.data, subsample ?? count, random);
  const data = new Float32Array(picked.length * dims);
  picked.forEach((i, k) => data.set(mu.data.subarray(i * dims, (i + 1) * dims), k * dims));
  return { data, labels: Uint8Array.from(picked, (i) => labels.data[i]!), count: picked.length, dims };
}

function writeProjection(
  outDir: string,
  latents: Latents,
  coords: Float32Array,
  method: string,
  extra: Record<string, unknown>,
  inputDir: string,
): void {
  writeFileSync(join(outDir, 'coords.npy'), encodeNpy({ dtype: 'float32', shape: [latents.count, 2], data: coords }));
  writeFileSync(join(outDir, 'labels.npy'), encodeNpy({ dtype: 'uint8', shape: [latents.count], data: latents.labels }));
  // The class names come along (evaluate writes them; other latents get the label values).
  const { classes } = classNamesIn(inputDir, [latents.labels]);
  writeFileSync(join(outDir, 'classes.json'), JSON.stringify({ classes }, null, 2) + '\n');
  const info = {
    method,
    points: latents.count,
    input_dims: latents.dims,
    knn10_agreement_input: knnLabelAgreement(latents.data, latents.count, latents.dims, latents.labels),
    knn10_agreement: knnLabelAgreement(coords, latents.count, 2, latents.labels),
    ...extra,
  };
  writeFileSync(join(outDir, 'projection.json'), JSON.stringify(info, null, 2) + '\n');
}

export const PROJECTION_OUTPUTS = { coords: 'coords.npy', labels: 'labels.npy', classes: 'classes.json', info: 'projection.json' } as const;

export const LATENTS_INPUT = { latents: { description: 'an evaluate stage' } } as const;

/** One row array per point, for libraries that take number[][]. */
export function latentRows(latents: Latents): number[][] {
  return Array.from({ length: latents.count }, (_, i) => Array.from(latents.data.subarray(i * latents.dims, (i + 1) * latents.dims)));
}

/** A projection stage's whole run: read and subsample the latents, project them, write the outputs (its time goes to the log). */
export async function projectLatents(
  ctx: StageContext<{ subsample?: number }>,
  method: string,
  project: (latents: Latents) => Promise<{ coords: Float32Array; extra: Record<string, unknown> }>,
): Promise<void> {
  const latents = readLatents(ctx.input('latents'), ctx.params.subsample, ctx.random);
  const started = performance.now();
  const { coords, extra } = await project(latents);
  ctx.log(`${method}: ${latents.count} points in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  writeProjection(ctx.outDir, latents, coords, method, extra, ctx.input('latents'));
}
