/**
 * NumPy's .npy format (version 1.0), so arrays written by ablate open with numpy.load and
 * the reverse. Little-endian, C order; the dtypes ablate uses: uint8, int32, float32.
 * Format: magic "\x93NUMPY", version 1.0, header length (uint16 LE), a Python dict literal
 * padded with spaces to a multiple of 64 bytes (ending in "\n"), then the raw data.
 */
import { readFileSync } from 'node:fs';

export type NpyArray =
  | { readonly dtype: 'uint8'; readonly shape: readonly number[]; readonly data: Uint8Array }
  | { readonly dtype: 'int32'; readonly shape: readonly number[]; readonly data: Int32Array }
  | { readonly dtype: 'float32'; readonly shape: readonly number[]; readonly data: Float32Array };

const DESCR = { uint8: '|u1', int32: '<i4', float32: '<f4' } as const;
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);

export function encodeNpy(array: NpyArray): Buffer {
  const count = array.shape.reduce((a, b) => a * b, 1);
  if (count !== array.data.length)
    throw new Error(`npy: shape [${array.shape.join(', ')}] holds ${count} values, data has ${array.data.length}`);
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${DESCR[array.dtype]}', 'fortran_order': False, 'shape': ${shape}, }`;
  const unpadded = MAGIC.length + 2 + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const prefix = Buffer.alloc(MAGIC.length + 4);
  MAGIC.copy(prefix);
  prefix[6] = 1;
  prefix[7] = 0;
  prefix.writeUInt16LE(header.length, 8);
  const data = Buffer.from(array.data.buffer, array.data.byteOffset, array.data.byteLength);
  return Buffer.concat([prefix, Buffer.from(header, 'latin1'), data]);
}

export function decodeNpy(bytes: Buffer, source = 'npy'): NpyArray {
  if (bytes.length < 10 || !bytes.subarray(0, 6).equals(MAGIC)) throw new Error(`${source}: not a .npy file (bad magic)`);
  const major = bytes[6]!;
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = bytes.subarray(start, start + headerLength).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${source}: unreadable .npy header ${JSON.stringify(header)}`);
  if (fortran === 'True') throw new Error(`${source}: Fortran-order arrays are not supported`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const offset = start + headerLength;
  const count = shape.reduce((a, b) => a * b, 1);
  const body = bytes.subarray(offset);
  // Copy into a fresh, aligned buffer: typed arrays need an offset that is a multiple of their element size.
  const copy = (size: number) => {
    if (body.length < count * size)
      throw new Error(`${source}: truncated: ${count} values need ${count * size} bytes, found ${body.length}`);
    const out = new ArrayBuffer(count * size);
    new Uint8Array(out).set(body.subarray(0, count * size));
    return out;
  };
  switch (descr) {
    case '|u1':
    case '<u1':
      return { dtype: 'uint8', shape, data: new Uint8Array(copy(1)) };
    case '<i4':
      return { dtype: 'int32', shape, data: new Int32Array(copy(4)) };
    case '<f4':
      return { dtype: 'float32', shape, data: new Float32Array(copy(4)) };
    default:
      throw new Error(`${source}: dtype ${descr} is not supported (uint8, int32, float32 are)`);
  }
}

export function readNpy(file: string): NpyArray {
  return decodeNpy(readFileSync(file), file);
}

/** Reads a .npy file and checks its dtype, for callers that know what they expect. */
export function readNpyAs<D extends NpyArray['dtype']>(file: string, dtype: D): Extract<NpyArray, { dtype: D }> {
  const array = readNpy(file);
  if (array.dtype !== dtype) throw new Error(`${file}: expected ${dtype} data, found ${array.dtype}`);
  return array as Extract<NpyArray, { dtype: D }>;
}
