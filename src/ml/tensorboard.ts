/**
 * TensorBoard event files (`events.out.tfevents.*`), written without TensorFlow: the format is
 * small enough to state here, and TensorBoard reads any file in it.
 *
 * A file is a sequence of TFRecords, each
 *   uint64 length (little-endian) · uint32 masked CRC-32C of those 8 bytes · `length` bytes of
 *   data · uint32 masked CRC-32C of the data,
 * where masked(c) = ((c >>> 15) | (c << 17)) + 0xa282ead8 (mod 2^32): TensorFlow masks CRCs so a
 * CRC computed over data that itself holds CRCs stays well distributed. Each record's data is a
 * serialized `tensorflow.Event` protocol buffer (tensorboard/compat/proto/event.proto):
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; Image image = 4; }
 *   Image   { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
 * The first record carries only file_version "brain.Event:2", as TensorFlow's writer starts.
 * Six message fields need no protobuf library: the encoder below writes exactly these.
 */

/** One summary value: a scalar, or a PNG with its size and colour space (1 grey, 3 RGB). */
export type SummaryValue =
  | { readonly tag: string; readonly scalar: number }
  | { readonly tag: string; readonly png: Uint8Array; readonly height: number; readonly width: number; readonly colorspace: 1 | 3 | 4 };

export interface SummaryEvent {
  /** Seconds since 1970 as TensorBoard's "wall" axis reads it. */
  readonly wallTime: number;
  readonly step: number;
  readonly values: readonly SummaryValue[];
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    // 0x82f63b78: the Castagnoli polynomial, bit-reversed (CRC-32C, as iSCSI and TFRecord use).
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = CRC32C_TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** Protocol-buffer wire format: varints, and fields tagged (number << 3 | wire type). */
class ProtoWriter {
  private readonly parts: Uint8Array[] = [];

  private varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value));
    const out: number[] = [];
    do {
      const byte = Number(v & 0x7fn);
      v >>= 7n;
      out.push(v ? byte | 0x80 : byte);
    } while (v);
    this.parts.push(Uint8Array.from(out));
  }

  private key(field: number, wireType: 0 | 1 | 2 | 5): void {
    this.varint((field << 3) | wireType);
  }

  int(field: number, value: number): this {
    this.key(field, 0);
    this.varint(value);
    return this;
  }

  double(field: number, value: number): this {
    this.key(field, 1);
    const bytes = Buffer.alloc(8);
    bytes.writeDoubleLE(value);
    this.parts.push(bytes);
    return this;
  }

  float(field: number, value: number): this {
    this.key(field, 5);
    const bytes = Buffer.alloc(4);
    bytes.writeFloatLE(value);
    this.parts.push(bytes);
    return this;
  }

  bytes(field: number, value: Uint8Array | string): this {
    const data = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
    this.key(field, 2);
    this.varint(data.length);
    this.parts.push(data);
    return this;
  }

  finish(): Uint8Array {
    return Buffer.concat(this.parts);
  }
}

function encodeValue(value: SummaryValue): Uint8Array {
  const out = new ProtoWriter().bytes(1, value.tag);
  if ('scalar' in value) return out.float(2, value.scalar).finish();
  const image = new ProtoWriter().int(1, value.height).int(2, value.width).int(3, value.colorspace).bytes(4, value.png).finish();
  return out.bytes(4, image).finish();
}

export function encodeEvent(event: SummaryEvent | { readonly wallTime: number; readonly fileVersion: string }): Uint8Array {
  const out = new ProtoWriter().double(1, event.wallTime);
  if ('fileVersion' in event) return out.bytes(3, event.fileVersion).finish();
  const summary = new ProtoWriter();
  for (const value of event.values) summary.bytes(1, encodeValue(value));
  return out.int(2, event.step).bytes(5, summary.finish()).finish();
}

/** One TFRecord around `data`. */
export function tfRecord(data: Uint8Array): Buffer {
  const header = Buffer.alloc(12);
  header.writeBigUInt64LE(BigInt(data.length));
  header.writeUInt32LE(maskedCrc32c(header.subarray(0, 8)), 8);
  const footer = Buffer.alloc(4);
  footer.writeUInt32LE(maskedCrc32c(data));
  return Buffer.concat([header, data, footer]);
}

/** A whole event file: the version record, then one record per event, in order. */
export function eventFile(events: readonly SummaryEvent[], startTime: number): Buffer {
  return Buffer.concat([
    tfRecord(encodeEvent({ wallTime: startTime, fileVersion: 'brain.Event:2' })),
    ...events.map((e) => tfRecord(encodeEvent(e))),
  ]);
}
