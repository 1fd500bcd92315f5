/**
 * Reading arrays a user saved with `numpy.save`, whatever numeric dtype NumPy chose (float64
 * and int64 are its defaults), as plain numbers. npy.ts reads and writes the three dtypes
 * ablate's own stages exchange and stays as it is: the training stage's fingerprint covers
 * its bytes. Both follow the same format (version 1.0–3.0): magic "\x93NUMPY", version,
 * header length (uint16 in 1.0, uint32 after), a Python dict literal, then C-order data.
 */

/** An array's values as doubles (exact for every integer below 2^53), with its dtype as NumPy names it. */
export interface NumericArray {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly values: Float64Array;
  readonly integer: boolean;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** Element reader per (kind, size): DataView reads either byte order. */
function reader(kind: string, size: number): ((view: DataView, offset: number, little: boolean) => number) | undefined {
  const readers: Record<string, (view: DataView, offset: number, little: boolean) => number> = {
    b1: (v, o) => v.getUint8(o),
    u1: (v, o) => v.getUint8(o),
    i1: (v, o) => v.getInt8(o),
    u2: (v, o, l) => v.getUint16(o, l),
    i2: (v, o, l) => v.getInt16(o, l),
    u4: (v, o, l) => v.getUint32(o, l),
    i4: (v, o, l) => v.getInt32(o, l),
    u8: (v, o, l) => Number(v.getBigUint64(o, l)),
    i8: (v, o, l) => Number(v.getBigInt64(o, l)),
    f4: (v, o, l) => v.getFloat32(o, l),
    f8: (v, o, l) => v.getFloat64(o, l),
  };
  return readers[`${kind}${size}`];
}

/** Parses a .npy file; `source` (its path) starts every error message. */
export function readNumericNpy(bytes: Uint8Array, source: string): NumericArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b))
    throw new Error(`${source}: not a .npy file (it does not start with \\x93NUMPY)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new Error(`${source}: .npy format version ${major} is not known`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = Buffer.from(bytes.subarray(start, start + headerLength)).toString(major === 3 ? 'utf8' : 'latin1');
  const descr = /'descr':\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined)
    throw new Error(`${source}: a structured or object array (header ${header.trim()}); save a plain numeric array`);
  const [, order, kind, sizeText] = descr as unknown as [string, string, string, string];
  const size = Number(sizeText);
  const read = reader(kind, size);
  if (!read) throw new Error(`${source}: dtype '${order}${kind}${size}' is not a real number type`);
  if (fortran === 'True') throw new Error(`${source}: a Fortran-order array; save numpy.ascontiguousarray(a) instead`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLength;
  if (bytes.length - offset < count * size)
    throw new Error(
      `${source}: truncated: shape (${shape.join(', ')}) needs ${count * size} bytes of data, the file has ${bytes.length - offset}`,
    );
  const little = order !== '>';
  const values = new Float64Array(count);
  for (let i = 0; i < count; i++) values[i] = read(view, offset + i * size, little);
  return { dtype: `${order}${kind}${size}`, shape, values, integer: kind !== 'f' };
}
