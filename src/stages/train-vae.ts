import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { BackendParam, backendEnvironment, ThreadsParam } from '../ml/backend.js';
import { defineStage, StageError } from '../core/contract.js';
import type { SummaryEvent, SummaryValue } from '../ml/tensorboard.js';
import type { EpochRecord } from '../ml/vae/train.js';

const Params = Type.Object(
  {
    model: Type.Union(
      [
        Type.Literal('conv'),
        Type.Literal('dense'),
        Type.Literal('ae'),
        Type.Literal('cvae'),
        Type.Literal('wae'),
        Type.Literal('infovae'),
        Type.Literal('vqvae'),
      ],
      {
        default: 'conv',
        description:
          "conv: the seeds' conv VAE; dense: MLP VAE; ae: deterministic autoencoder baseline; cvae: label-conditioned VAE; wae: Wasserstein autoencoder (WAE-MMD, deterministic encoder); infovae: InfoVAE (KL and MMD); vqvae: VQ-VAE (a grid of codebook entries; latent_dim is each entry's size).",
      },
    ),
    likelihood: Type.Union([Type.Literal('bernoulli'), Type.Literal('gaussian')], {
      default: 'bernoulli',
      description:
        "Pixel likelihood of the reconstruction term: bernoulli (BCE on [0, 1], the seeds' choice) or gaussian (N(σ(logits), sigma²), for continuous RGB).",
    }),
    sigma: Type.Number({ exclusiveMinimum: 0, default: 0.1, description: 'Standard deviation of the gaussian likelihood.' }),
    mmd_weight: Type.Number({
      minimum: 0,
      default: 10,
      description: "λ of wae (recon + λ·MMD, the WAE paper's 10 for MNIST) and infovae (recon + (1 − α)·KL + (α + λ − 1)·MMD).",
    }),
    info_alpha: Type.Number({ minimum: 0, maximum: 1, default: 0, description: 'α of infovae: its KL weighs 1 − α.' }),
    codebook_size: Type.Integer({ minimum: 2, maximum: 65_536, default: 64, description: 'Entries K of the vqvae codebook.' }),
    commitment: Type.Number({ minimum: 0, default: 0.25, description: "The vqvae's commitment weight (the paper's 0.25)." }),
    latent_dim: Type.Integer({ minimum: 1, maximum: 4096, default: 2 }),
    hidden: Type.Integer({
      minimum: 1,
      maximum: 65_536,
      default: 128,
      description: 'Units of the dense layer before the latent heads (seed 004 uses 16).',
    }),
    beta: Type.Number({ minimum: 0, default: 1, description: 'Weight of the KL term (β-VAE); 1 is the plain ELBO.' }),
    epochs: Type.Integer({ minimum: 1, maximum: 100_000, default: 10 }),
    batch_size: Type.Integer({
      minimum: 1,
      maximum: 65_536,
      default: 128,
      description:
        'Images per step; at most 65,536 (a batch that size of 28×28 floats is 200 MB, and one larger than the data set is the data set).',
    }),
    lr: Type.Number({ exclusiveMinimum: 0, default: 1e-3, description: 'Adam learning rate.' }),
    kl_warmup: Type.Number({ minimum: 0, default: 0, description: 'Epochs over which β ramps up from 0.' }),
    early_stopping: Type.Integer({
      minimum: 0,
      maximum: 100_000,
      default: 0,
      description: 'Patience in epochs on validation loss (0: off); the best epoch is kept.',
    }),
    depth: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 6,
        description:
          'Stride-2 blocks of the conv models; default: 2 up to 32 pixels a side (the seeds), one more per doubling (64×64: 3). Both sides must be divisible by 2^depth.',
      }),
    ),
    seed: Type.Integer({ default: 42 }),
    backend: BackendParam,
    threads: ThreadsParam,
  },
  { additionalProperties: false },
);

/** Images shown in TensorBoard each epoch: originals over their reconstructions at z = μ. */
const SHOWN_IMAGES = 8;

/**
 * TensorBoard's view of a training, as Keras' TensorBoard callback lays it out: runs `train`
 * and `validation` with the same tags (epoch_loss, epoch_bce, epoch_kl), so each chart overlays
 * the two. wall_time is the epoch number, not the clock: a clock time (and images/s, which is
 * in the log) would make two executions with one fingerprint write different bytes.
 */
function tensorboardEvents(
  history: readonly EpochRecord[],
  reconKey: string,
  images: readonly Uint8Array[],
  imageSize: { rows: number; cols: number; channels: 1 | 3 },
) {
  const scalar = (tag: string, value: number): SummaryValue => ({ tag, scalar: value });
  const train: SummaryEvent[] = [];
  const validation: SummaryEvent[] = [];
  history.forEach((r, i) => {
    const image: SummaryValue = {
      tag: 'reconstructions',
      png: images[i]!,
      height: imageSize.rows,
      width: imageSize.cols,
      colorspace: imageSize.channels,
    };
    const withImage = r.val_loss === undefined ? [image] : [];
    train.push({
      wallTime: r.epoch,
      step: r.epoch,
      values: [
        scalar('epoch_loss', r.loss),
        scalar(`epoch_${reconKey}`, r.recon),
        scalar('epoch_kl', r.kl),
        scalar('epoch_beta', r.beta),
        ...(r.mmd === undefined ? [] : [scalar('epoch_mmd', r.mmd)]),
        ...(r.vq === undefined ? [] : [scalar('epoch_vq', r.vq)]),
        ...withImage,
      ],
    });
    if (r.val_loss !== undefined)
      validation.push({
        wallTime: r.epoch,
        step: r.epoch,
        values: [
          scalar('epoch_loss', r.val_loss),
          scalar(`epoch_${reconKey}`, r.val_recon!),
          scalar('epoch_kl', r.val_kl!),
          ...(r.val_mmd === undefined ? [] : [scalar('epoch_mmd', r.val_mmd)]),
          ...(r.val_vq === undefined ? [] : [scalar('epoch_vq', r.val_vq)]),
          image,
        ],
      });
  });
  return { train, validation };
}

function csv(rows: readonly Record<string, number | undefined>[]): string {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return [columns.join(','), ...rows.map((r) => columns.map((c) => (r[c] === undefined ? '' : String(r[c]))).join(','))].join('\n') + '\n';
}

export default defineStage({
  name: 'train-vae',
  description: 'Train a VAE (conv, dense, conditional) or the autoencoder baseline on preprocessed images.',
  params: Params,
  inputs: { data: { description: 'the output of a preprocess stage' } },
  threads: (p) => p.threads,
  // model/ holds only what training determines (weights, architecture), so its digest is
  // stable across identical reruns and stages that read `train.model` keep early cutoff;
  // timings live outside it.
  outputs: () => ({
    model: 'model/',
    history: 'history.json',
    history_csv: 'history.csv',
    tensorboard: 'tensorboard/',
    run: 'run.json',
    metrics: 'metrics.json',
  }),
  metrics: () => 'metrics.json',
  environment: backendEnvironment,
  async run(ctx) {
    const { loadTf } = await import('../ml/backend.js');
    const { encodeNpy, readNpyAs } = await import('../ml/npy.js');
    const { buildModels, convShapeProblem, defaultDepth } = await import('../ml/vae/model.js');
    const { classNamesIn } = await import('../ml/dataset.js');
    const { reconstructAtMean, trainVae } = await import('../ml/vae/train.js');
    const { saveLayersModel, saveModelConfig } = await import('../ml/vae/persist.js');
    const { gridLayout, gridPng } = await import('../ml/figures/grid.js');
    const { eventFile } = await import('../ml/tensorboard.js');
    const p = ctx.params;
    const tf = await loadTf(p.backend, ctx.threads);
    ctx.log(`backend: ${tf.backend} on ${ctx.threads} thread(s) (${tf.reason})`);
    ctx.progress(`backend ${tf.backend} on ${ctx.threads} thread(s): ${tf.reason}`);
    const load = (split: string) => {
      const images = readNpyAs(join(ctx.input('data'), `${split}_images.npy`), 'float32');
      const labels = readNpyAs(join(ctx.input('data'), `${split}_labels.npy`), 'uint8');
      const [count, rows, cols, channels] = images.shape as [number, number, number, number];
      if (images.shape.length !== 4)
        throw new StageError(
          `${split}_images.npy: expected [N,H,W,C] float32 images (run a preprocess stage first), got [${images.shape.join(',')}]`,
        );
      return { images: images.data, labels: labels.data, count, shape: { rows, cols, channels } };
    };
    const train = load('train');
    const validation = load('val');
    const image = train.shape;
    if (validation.count && JSON.stringify(validation.shape) !== JSON.stringify(image))
      throw new StageError(
        `train images are ${image.rows}×${image.cols}×${image.channels} but validation ones ${validation.shape.rows}×${validation.shape.cols}×${validation.shape.channels}`,
      );
    const depth = p.depth ?? defaultDepth(image);
    const problem = p.model === 'dense' ? undefined : convShapeProblem(image, depth);
    if (problem) throw new StageError(problem);
    const { classes } = classNamesIn(ctx.input('data'), [train.labels, validation.labels]);
    if (p.early_stopping > 0 && validation.count === 0)
      throw new StageError('early_stopping needs a validation split: set `validation:` on the data stage');
    const models = buildModels(tf, {
      kind: p.model,
      image,
      depth,
      latentDim: p.latent_dim,
      hidden: p.hidden,
      classes: classes.length,
      codebookSize: p.codebook_size,
      seed: p.seed,
    });
    if (p.model === 'infovae' && p.beta !== 1)
      throw new StageError(`beta is the VAE's KL weight; infovae's is 1 − info_alpha (${1 - p.info_alpha}): leave beta at 1`);
    const likelihood = p.likelihood === 'gaussian' ? ({ kind: 'gaussian', sigma: p.sigma } as const) : ({ kind: 'bernoulli' } as const);
    // The objective's weights (loss.ts): β·KL for the VAEs, λ·MMD for the WAE, both for InfoVAE.
    const weights =
      p.model === 'wae'
        ? { beta: p.beta, mmdWeight: p.mmd_weight }
        : p.model === 'infovae'
          ? { beta: 1 - p.info_alpha, mmdWeight: p.info_alpha + p.mmd_weight - 1 }
          : { beta: p.beta, mmdWeight: 0 };
    ctx.log(
      `training ${p.model} d=${p.latent_dim} β=${p.beta} on ${train.count} images (${validation.count} validation), ${p.epochs} epochs`,
    );
    const shown = validation.count ? validation : train;
    const shownIndices = Array.from({ length: Math.min(SHOWN_IMAGES, shown.count) }, (_, i) => i);
    const originals = shown.images.subarray(0, shownIndices.length * image.rows * image.cols * image.channels);
    const epochImages: Uint8Array[] = [];
    const result = trainVae(tf, models, train, validation.count ? validation : undefined, {
      kind: p.model,
      epochs: p.epochs,
      batchSize: p.batch_size,
      learningRate: p.lr,
      likelihood,
      ...weights,
      commitment: p.commitment,
      klWarmupEpochs: p.kl_warmup,
      patience: p.early_stopping,
      classes: classes.length,
      seed: p.seed,
      signal: ctx.signal,
      progress: (message, fraction) => ctx.progress(message, fraction),
      log: (line) => ctx.log(line),
      onEpoch: () => {
        const recon = reconstructAtMean(tf, models, p.model, shown, shownIndices, classes.length);
        const tiles = new Float32Array(originals.length * 2);
        tiles.set(originals);
        tiles.set(recon, originals.length);
        epochImages.push(gridPng({ tiles, tile: image, rows: 2, cols: shownIndices.length, scale: 2 }));
      },
    });
    await saveLayersModel(tf, models.encoder, join(ctx.outDir, 'model', 'encoder'));
    await saveLayersModel(tf, models.decoder, join(ctx.outDir, 'model', 'decoder'));
    saveModelConfig(join(ctx.outDir, 'model'), {
      model: p.model,
      latent_dim: p.latent_dim,
      hidden: p.hidden,
      depth,
      image,
      classes,
      ...(likelihood.kind === 'gaussian' ? { likelihood } : {}),
      ...(models.codebook ? { codebook: { size: p.codebook_size, dim: p.latent_dim } } : {}),
    });
    if (models.codebook)
      writeFileSync(
        join(ctx.outDir, 'model', 'codebook.npy'),
        encodeNpy({ dtype: 'float32', shape: [p.codebook_size, p.latent_dim], data: models.codebook.dataSync() as Float32Array }),
      );
    // The reconstruction term is named by its likelihood: `bce` for Bernoulli pixels, `nll` for Gaussian ones.
    const reconKey = likelihood.kind === 'bernoulli' ? 'bce' : 'nll';
    const rows = result.history.map(({ recon, val_recon, ...rest }) => {
      const { epoch, loss, kl, beta, mmd, vq, val_loss, val_kl, val_mmd, val_vq } = rest;
      // Key order as before this had other likelihoods: history.json of a Bernoulli model keeps its bytes.
      const row = { epoch, loss, [reconKey]: recon, kl, beta, mmd, vq, val_loss, [`val_${reconKey}`]: val_recon, val_kl, val_mmd, val_vq };
      return Object.fromEntries(Object.entries(row).filter(([, v]) => v !== undefined)) as Record<string, number>;
    });
    writeFileSync(join(ctx.outDir, 'history.json'), JSON.stringify(rows, null, 2) + '\n');
    writeFileSync(join(ctx.outDir, 'history.csv'), csv(rows));
    const grid = gridLayout({ tile: image, rows: 2, cols: shownIndices.length, scale: 2 });
    const runs = tensorboardEvents(result.history, reconKey, epochImages, {
      rows: grid.height,
      cols: grid.width,
      channels: image.channels === 1 ? 1 : 3,
    });
    for (const [run, events] of Object.entries(runs)) {
      if (!events.length) continue;
      mkdirSync(join(ctx.outDir, 'tensorboard', run), { recursive: true });
      // A fixed name (TensorBoard reads any file whose name holds "tfevents"): host and time would differ per execution.
      writeFileSync(join(ctx.outDir, 'tensorboard', run, 'events.out.tfevents.ablate'), eventFile(events, 0));
    }
    const last = result.history[result.history.length - 1]!;
    const best = result.history[result.bestEpoch - 1]!;
    writeFileSync(
      join(ctx.outDir, 'run.json'),
      JSON.stringify(
        {
          backend: tf.backend,
          threads: ctx.threads,
          versions: { ...tf.versions, node: process.version },
          seed: p.seed,
          params: p,
          image,
          depth,
          train_images: train.count,
          validation_images: validation.count,
          best_epoch: result.bestEpoch,
          stopped_early: result.stoppedEarly,
        },
        null,
        2,
      ) + '\n',
    );
    writeFileSync(
      join(ctx.outDir, 'metrics.json'),
      JSON.stringify(
        {
          train_loss: last.loss,
          [`train_${reconKey}`]: last.recon,
          train_kl: last.kl,
          ...(last.mmd === undefined ? {} : { train_mmd: last.mmd }),
          ...(last.vq === undefined ? {} : { train_vq: last.vq }),
          ...(best.val_loss === undefined ? {} : { val_loss: best.val_loss }),
          best_epoch: result.bestEpoch,
          epochs_run: result.history.length,
        },
        null,
        2,
      ) + '\n',
    );
  },
});
