/**
 * Image grids as 8-bit PNGs (pngjs), grey or RGB as the tiles are: tiles in rows and columns, each pixel scaled
 * up by an integer factor, with thin light separators between tiles and thicker ones between
 * column groups (e.g. originals | sampled | mean reconstructions).
 */
import { PNG } from 'pngjs';
import type { ImageShape } from '../vae/model.js';

export interface GridOptions {
  /** Tiles [n, rows, cols, channels] in [0, 1], row-major; a tile index ≥ n is left blank. */
  readonly tiles: Float32Array;
  /** One tile's shape: 1 channel draws a grey PNG, 3 an RGB one. */
  readonly tile: ImageShape;
  readonly rows: number;
  readonly cols: number;
  /** Output pixels per image pixel. */
  readonly scale?: number;
  /** Separator between tiles, in output pixels. */
  readonly gap?: number;
  /** A wider separator after every this many columns (0: none). */
  readonly groupEvery?: number;
  /** Images are drawn white-on-black as MNIST is; the separators are mid gray. */
  readonly separator?: number;
}

/** Where a grid's tiles are, in output pixels: what labels around it line up with. */
export interface GridLayout {
  readonly width: number;
  readonly height: number;
  /** Width and height of one tile. */
  readonly cellWidth: number;
  readonly cellHeight: number;
  /** Left edge of column c, top edge of row r. */
  colX(c: number): number;
  rowY(r: number): number;
}

export function gridLayout(options: Omit<GridOptions, 'tiles'>): GridLayout {
  const { tile, rows, cols } = options;
  const scale = options.scale ?? 2;
  const gap = options.gap ?? 1;
  const groupEvery = options.groupEvery ?? 0;
  const groupGap = gap * 4;
  const [cellWidth, cellHeight] = [tile.cols * scale, tile.rows * scale];
  const groupGaps = (c: number) => (groupEvery > 0 ? Math.floor(c / groupEvery) : 0);
  const colX = (c: number) => c * (cellWidth + gap) + groupGaps(c) * (groupGap - gap);
  return {
    width: colX(cols - 1) + cellWidth,
    height: rows * cellHeight + (rows - 1) * gap,
    cellWidth,
    cellHeight,
    colX,
    rowY: (r) => r * (cellHeight + gap),
  };
}

export function gridPng(options: GridOptions): Buffer {
  const { tiles, tile, rows, cols } = options;
  const scale = options.scale ?? 2;
  const { width, height, cellWidth, cellHeight, colX, rowY } = gridLayout(options);
  const channels = tile.channels;
  if (channels !== 1 && channels !== 3) throw new Error(`a grid draws grey or RGB tiles, not ${channels} channels`);
  const tileValues = tile.rows * tile.cols * channels;
  const count = tiles.length / tileValues;
  // colorType 0: grey, 2: RGB, one byte per channel.
  const colorType = channels === 1 ? 0 : 2;
  const png = new PNG({ width, height, colorType, inputColorType: colorType, bitDepth: 8, inputHasAlpha: false });
  const data = png.data;
  data.fill(options.separator ?? 160);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const index = r * cols + c;
      const x0 = colX(c);
      const y0 = rowY(r);
      for (let y = 0; y < cellHeight; y++) {
        for (let x = 0; x < cellWidth; x++) {
          const source = index * tileValues + (Math.floor(y / scale) * tile.cols + Math.floor(x / scale)) * channels;
          for (let k = 0; k < channels; k++) {
            const v = index < count ? tiles[source + k]! : 0;
            data[((y0 + y) * width + x0 + x) * channels + k] = Math.round(Math.min(1, Math.max(0, v)) * 255);
          }
        }
      }
    }
  }
  return PNG.sync.write(png, { colorType, inputColorType: colorType, inputHasAlpha: false, bitDepth: 8 });
}
