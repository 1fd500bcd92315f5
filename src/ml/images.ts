/**
 * Picture files → fixed-size uint8 pixel arrays, for the `image-folder` stage. Decoding is
 * pure JavaScript (pngjs, jpeg-js) and every later step is integer or double arithmetic in a
 * fixed order, so the same files give the same bytes on every CPU: a dataset stage declares no
 * machine facts in its fingerprint, and these functions keep that true.
 */
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';

/** Decoded pixels, row-major, `channels` interleaved values per pixel (1 grey, 3 RGB, 4 RGBA). */
export interface Pixels {
  readonly width: number;
  readonly height: number;
  readonly channels: 1 | 3 | 4;
  readonly data: Uint8Array;
}

/** What the first bytes of a file say it is; the extension is only used to find candidates. */
export function sniffFormat(bytes: Uint8Array): 'png' | 'jpeg' | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpeg';
  return undefined;
}

/** Largest picture accepted, in megapixels: a decompression bomb fails instead of eating the memory. */
const MAX_MEGAPIXELS = 100;

/**
 * Decodes a PNG or JPEG by its content. Throws an Error saying what is wrong (the caller adds
 * the file name). JPEGs decode strictly: jpeg-js would otherwise fill a truncated file's
 * missing blocks with grey and report success.
 */
export function decodeImage(bytes: Uint8Array): Pixels {
  const format = sniffFormat(bytes);
  if (format === 'png') {
    // 16-bit PNGs are scaled to 8 bits; palette and grey PNGs are expanded to RGBA by pngjs.
    const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    if (png.width * png.height > MAX_MEGAPIXELS * 1e6) throw new Error(`${png.width}×${png.height} is over ${MAX_MEGAPIXELS} megapixels`);
    return {
      width: png.width,
      height: png.height,
      channels: 4,
      data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.length),
    };
  }
  if (format === 'jpeg') {
    const image = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      tolerantDecoding: false,
      maxResolutionInMP: MAX_MEGAPIXELS,
      maxMemoryUsageInMB: 2048,
    });
    return { width: image.width, height: image.height, channels: 3, data: image.data };
  }
  throw new Error('not a PNG or JPEG file (its first bytes match neither signature)');
}

/**
 * The picture with `channels` 1 (grey) or 3 (RGB). Alpha is dropped, as TensorFlow's
 * decode_png(channels=3) drops it. Grey is ITU-R BT.601 luma in PIL's fixed point,
 * (19595 R + 38470 G + 7471 B + 2^15) >> 16, the formula behind PIL's `convert('L')` that most
 * Python pipelines use; grey → RGB copies the value to all three channels.
 */
export function toChannels(image: Pixels, channels: 1 | 3): Pixels {
  if (image.channels === channels) return image;
  const count = image.width * image.height;
  const out = new Uint8Array(count * channels);
  const src = image.data;
  const stride = image.channels;
  for (let p = 0; p < count; p++) {
    const s = p * stride;
    if (channels === 1) {
      out[p] = stride === 1 ? src[s]! : (19595 * src[s]! + 38470 * src[s + 1]! + 7471 * src[s + 2]! + 32768) >>> 16;
    } else if (stride === 1) {
      out[p * 3] = out[p * 3 + 1] = out[p * 3 + 2] = src[s]!;
    } else {
      out[p * 3] = src[s]!;
      out[p * 3 + 1] = src[s + 1]!;
      out[p * 3 + 2] = src[s + 2]!;
    }
  }
  return { width: image.width, height: image.height, channels, data: out };
}

/**
 * The centred window of the target's aspect ratio, as Keras' `crop_to_aspect_ratio=True`:
 * a 178×218 CelebA portrait cropped for 64×64 keeps its middle 178×178.
 */
export function centreCrop(width: number, height: number, targetWidth: number, targetHeight: number) {
  // Compare width/height with targetWidth/targetHeight in integers, so no rounding decides.
  const cropWidth = width * targetHeight > height * targetWidth ? Math.round((height * targetWidth) / targetHeight) : width;
  const cropHeight = width * targetHeight > height * targetWidth ? height : Math.round((width * targetHeight) / targetWidth);
  return { left: Math.floor((width - cropWidth) / 2), top: Math.floor((height - cropHeight) / 2), width: cropWidth, height: cropHeight };
}

/**
 * Area-resampling weights along one axis: output pixel o covers the source interval
 * [o·s, (o+1)·s) with s = from/to, and each source pixel counts by the length it overlaps,
 * divided by s. This is a box filter (tf.image.resize's `area`, OpenCV's INTER_AREA when
 * shrinking): every source pixel contributes, so shrinking a photo 3× does not alias the
 * way sampling every third pixel would.
 */
function areaWeights(from: number, to: number): { start: number; weights: number[] }[] {
  const scale = from / to;
  return Array.from({ length: to }, (_, o) => {
    const lo = o * scale;
    const hi = (o + 1) * scale;
    const start = Math.floor(lo);
    const weights: number[] = [];
    for (let i = start; i < hi && i < from; i++) weights.push((Math.min(hi, i + 1) - Math.max(lo, i)) / scale);
    return { start, weights };
  });
}

/** Crops the centred window of the target's aspect ratio and area-resamples it to targetWidth × targetHeight. */
export function cropAndResize(image: Pixels, targetWidth: number, targetHeight: number): Pixels {
  const crop = centreCrop(image.width, image.height, targetWidth, targetHeight);
  const c = image.channels;
  const across = areaWeights(crop.width, targetWidth);
  const down = areaWeights(crop.height, targetHeight);
  // Horizontal pass over the cropped rows into doubles, then the vertical pass; round once at the end.
  const rows = new Float64Array(crop.height * targetWidth * c);
  for (let y = 0; y < crop.height; y++) {
    const srcRow = ((crop.top + y) * image.width + crop.left) * c;
    for (let x = 0; x < targetWidth; x++) {
      const { start, weights } = across[x]!;
      for (let k = 0; k < c; k++) {
        let sum = 0;
        for (let i = 0; i < weights.length; i++) sum += weights[i]! * image.data[srcRow + (start + i) * c + k]!;
        rows[(y * targetWidth + x) * c + k] = sum;
      }
    }
  }
  const out = new Uint8Array(targetHeight * targetWidth * c);
  for (let y = 0; y < targetHeight; y++) {
    const { start, weights } = down[y]!;
    for (let x = 0; x < targetWidth * c; x++) {
      let sum = 0;
      for (let i = 0; i < weights.length; i++) sum += weights[i]! * rows[(start + i) * targetWidth * c + x]!;
      out[y * targetWidth * c + x] = Math.min(255, Math.max(0, Math.round(sum)));
    }
  }
  return { width: targetWidth, height: targetHeight, channels: image.channels, data: out };
}
