/**
 * The IDX format of the original MNIST files (and Fashion-MNIST's): big-endian, magic
 * 0x00 0x00 <type> <dims>, one uint32 per dimension, then the data. Type 0x08 = unsigned
 * byte, the only one these datasets use. Gzipped files (.gz, as distributed) are accepted.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { StageError } from '../core/contract.js';

export interface IdxArray {
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** A malformed data file: the message names the file and what is wrong with it. */
export class IdxError extends StageError {}

export function decodeIdx(raw: Buffer, file: string): IdxArray {
  const bytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzip(raw, file) : raw;
  if (bytes.length < 4) throw new IdxError(`${file}: too short to be an IDX file (${bytes.length} bytes)`);
  if (bytes[0] !== 0 || bytes[1] !== 0)
    throw new IdxError(`${file}: wrong magic number 0x${bytes.subarray(0, 4).toString('hex')} (an IDX file starts with 0x0000)`);
  if (bytes[2] !== 0x08) throw new IdxError(`${file}: IDX data type 0x${bytes[2]!.toString(16)} is not unsigned byte (0x08)`);
  const dims = bytes[3]!;
  if (dims < 1 || dims > 4) throw new IdxError(`${file}: ${dims} dimensions; expected 1 (labels) or 3 (images)`);
  const headerLength = 4 + 4 * dims;
  if (bytes.length < headerLength) throw new IdxError(`${file}: truncated header`);
  const shape = Array.from({ length: dims }, (_, i) => bytes.readUInt32BE(4 + 4 * i));
  const count = shape.reduce((a, b) => a * b, 1);
  const available = bytes.length - headerLength;
  if (available < count)
    throw new IdxError(`${file}: truncated: header says [${shape.join(' × ')}] = ${count} bytes of data, the file has ${available}`);
  if (available > count) throw new IdxError(`${file}: ${available - count} unexpected bytes after the [${shape.join(' × ')}] data`);
  return { shape, data: new Uint8Array(bytes.buffer, bytes.byteOffset + headerLength, count) };
}

export function readIdx(file: string): IdxArray {
  return decodeIdx(readFileSync(file), file);
}

function gunzip(raw: Buffer, file: string): Buffer {
  try {
    return gunzipSync(raw);
  } catch (error) {
    throw new IdxError(`${file}: corrupt gzip data (${(error as Error).message})`);
  }
}

/** Reads an image file and its label file and checks they belong together. */
export function readIdxPair(imagesFile: string, labelsFile: string): { images: IdxArray; labels: IdxArray } {
  const images = readIdx(imagesFile);
  const labels = readIdx(labelsFile);
  if (images.shape.length !== 3)
    throw new IdxError(`${imagesFile}: expected images [count × rows × cols], found ${images.shape.length} dimensions`);
  if (labels.shape.length !== 1) throw new IdxError(`${labelsFile}: expected labels [count], found ${labels.shape.length} dimensions`);
  if (images.shape[0] !== labels.shape[0]) {
    throw new IdxError(`${imagesFile} has ${images.shape[0]} images but ${labelsFile} has ${labels.shape[0]} labels`);
  }
  const bad = labels.data.findIndex((l) => l > 9);
  if (bad >= 0) throw new IdxError(`${labelsFile}: label ${labels.data[bad]} at index ${bad} is not a class 0–9`);
  return { images, labels };
}
