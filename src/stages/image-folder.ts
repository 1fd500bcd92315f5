import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, resolve } from 'node:path';
import { Type } from '@sinclair/typebox';
import { DATASET_KIND, PoolSplitParams, writePooledDataset, type ClassNames } from '../ml/dataset.js';
import { cropAndResize, decodeImage, toChannels } from '../ml/images.js';
import { stratifiedSample } from '../ml/sampling.js';
import { defineStage, PATH_FORMAT, StageError } from '../core/contract.js';

const DECODED = new Set(['.png', '.jpg', '.jpeg']);
/** Picture formats a folder may well hold that are not decoded: named in an error rather than skipped unseen. */
const UNSUPPORTED = new Set(['.gif', '.bmp', '.webp', '.tif', '.tiff', '.heic', '.avif']);

/** The pictures of the folder and the class of each, as Keras' `image_dataset_from_directory` reads a directory. */
export function indexFolder(files: readonly string[], dir: string): { files: string[]; labels: number[]; names: ClassNames } {
  // Hidden files and folders (.DS_Store, .git) are not data; files that are not pictures (a README) are not either.
  const visible = files.filter((f) => !f.split('/').some((part) => part.startsWith('.')));
  const unsupported = visible.find((f) => UNSUPPORTED.has(extname(f).toLowerCase()));
  if (unsupported)
    throw new StageError(
      `${resolve(dir, unsupported)}: ${extname(unsupported).slice(1).toUpperCase()} pictures are not read (PNG and JPEG are); convert or remove it`,
    );
  const pictures = visible.filter((f) => DECODED.has(extname(f).toLowerCase()));
  if (!pictures.length) throw new StageError(`${dir}: no PNG or JPEG files (searched every subfolder)`);
  const topLevel = pictures.filter((f) => !f.includes('/'));
  if (topLevel.length === pictures.length) {
    return { files: pictures, labels: pictures.map(() => 0), names: { classes: ['unlabelled'], labelled: false } };
  }
  if (topLevel.length)
    throw new StageError(
      `${resolve(dir, topLevel[0]!)}: the folder has class subfolders and pictures beside them; put every picture in a class folder (labelled) or none in subfolders (unlabelled)`,
    );
  // Classes in sorted order of their folder names (code-unit order, as Python's sorted()), a picture in any depth below its class folder.
  const classes = [...new Set(pictures.map((f) => f.slice(0, f.indexOf('/'))))].sort();
  if (classes.length > 256) throw new StageError(`${dir}: ${classes.length} class folders; labels are uint8, so at most 256`);
  const index = new Map(classes.map((c, i) => [c, i]));
  return { files: pictures, labels: pictures.map((f) => index.get(f.slice(0, f.indexOf('/')))!), names: { classes, labelled: true } };
}

const Size = Type.Integer({ minimum: 1, maximum: 4096 });

export default defineStage({
  name: 'image-folder',
  description:
    'PNG and JPEG files of a folder (class subfolders give labels, as Keras image_dataset_from_directory) → centre-cropped, resized .npy splits.',
  params: Type.Object(
    {
      path: Type.String({
        format: PATH_FORMAT,
        description: 'Folder of pictures, relative to the pipeline; its files’ contents are fingerprinted. Subfolders are classes.',
      }),
      size: Type.Union([Size, Type.Tuple([Size, Size])], {
        description:
          'Side of the square images, or [height, width]: each picture is cropped to that aspect ratio around its centre, then area-resampled.',
      }),
      channels: Type.Union([Type.Literal(1), Type.Literal(3)], {
        default: 3,
        description: '3: RGB; 1: grey (BT.601 luma). Alpha is dropped.',
      }),
      ...PoolSplitParams,
    },
    { additionalProperties: false },
  ),
  ...DATASET_KIND,
  async run(ctx) {
    const dir = resolve(ctx.pipelineDir, ctx.params.path);
    if (!existsSync(dir) || !statSync(dir).isDirectory())
      throw new StageError(`${dir} is not a folder (param \`path\` ${JSON.stringify(ctx.params.path)}, relative to the pipeline file)`);
    const folder = indexFolder(ctx.listFiles(dir), dir);
    const { names } = folder;
    // `limit` is drawn from the labels first, so only the kept pictures are decoded (a first
    // look at 20,000 of CelebA's 202,599 decodes 20,000). writePooledDataset would draw the
    // same subset with the same random numbers; given the kept pool it draws none.
    const keep = stratifiedSample(folder.labels, ctx.params.limit ?? folder.files.length, ctx.random);
    const files = keep.map((i) => folder.files[i]!);
    const labels = Uint8Array.from(keep, (i) => folder.labels[i]!);
    const [rows, cols] = typeof ctx.params.size === 'number' ? [ctx.params.size, ctx.params.size] : ctx.params.size;
    const channels = ctx.params.channels;
    const pixels = rows * cols * channels;
    const images = new Uint8Array(files.length * pixels);
    files.forEach((file, i) => {
      let picture;
      try {
        picture = decodeImage(readFileSync(resolve(dir, file)));
      } catch (error) {
        throw new StageError(`${resolve(dir, file)}: cannot be read as a picture: ${(error as Error).message}`);
      }
      images.set(cropAndResize(toChannels(picture, channels), cols, rows).data, i * pixels);
      if (i % 1000 === 999) ctx.progress(`decoded ${i + 1} of ${files.length} pictures`, (i + 1) / files.length);
    });
    ctx.progress(
      `decoded ${files.length} of ${folder.files.length} pictures, ${names.labelled ? `${names.classes.length} classes` : 'unlabelled'} → ${rows}×${cols}×${channels}`,
    );
    const pool = { images, labels, count: files.length, rows, cols, channels };
    // The path as written in the pipeline: an absolute one would differ between checkouts.
    writePooledDataset(ctx.outDir, { pool, names, source: ctx.params.path }, ctx.params, ctx.random);
  },
});
