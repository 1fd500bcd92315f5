/**
 * Image grids as 8-bit grayscale PNGs (pngjs): tiles in rows and columns, each pixel scaled
 * up by an integer factor, with thin light separators between tiles and thicker ones between
 * column groups (e.g. originals | sampled | mean reconstructions).
 */
import { PNG } from 'pngjs';

export interface GridOptions {
  /** Tiles [n, size, size] in [0, 1], row-major; a tile index ≥ n is left blank. */
  readonly tiles: Float32Array;
  readonly tileSize: number;
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
  /** Side of one tile. */
  readonly cell: number;
  /** Left edge of column c, top edge of row r. */
  colX(c: number): number;
  rowY(r: number): number;
}

export function gridLayout(options: Omit<GridOptions, 'tiles'>): GridLayout {
  const { tileSize, rows, cols } = options;
  const scale = options.scale ?? 2;
  const gap = options.gap ?? 1;
  const groupEvery = options.groupEvery ?? 0;
  const groupGap = gap * 4;
  const cell = tileSize * scale;
  const groupGaps = (c: number) => (groupEvery > 0 ? Math.floor(c / groupEvery) : 0);
  const colX = (c: number) => c * (cell + gap) + groupGaps(c) * (groupGap - gap);
  return { width: colX(cols - 1) + cell, height: rows * cell + (rows - 1) * gap, cell, colX, rowY: (r) => r * (cell + gap) };
}

export function gridPng(options: GridOptions): Buffer {
  const { tiles, tileSize, rows, cols } = options;
  const scale = options.scale ?? 2;
  const { width, height, cell, colX, rowY } = gridLayout(options);
  const count = tiles.length / (tileSize * tileSize);
  const png = new PNG({ width, height, colorType: 0, inputColorType: 0, bitDepth: 8, inputHasAlpha: false });
  const data = png.data;
  data.fill(options.separator ?? 160);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const tile = r * cols + c;
      const x0 = colX(c);
      const y0 = rowY(r);
      for (let y = 0; y < cell; y++) {
        for (let x = 0; x < cell; x++) {
          const v = tile < count ? tiles[tile * tileSize * tileSize + Math.floor(y / scale) * tileSize + Math.floor(x / scale)]! : 0;
          data[(y0 + y) * width + x0 + x] = Math.round(Math.min(1, Math.max(0, v)) * 255);
        }
      }
    }
  }
  return PNG.sync.write(png, { colorType: 0, inputColorType: 0, inputHasAlpha: false, bitDepth: 8 });
}
