import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { PNG } from 'pngjs';
import protobuf from 'protobufjs';
import { crc32c, eventFile, maskedCrc32c, tfRecord } from '../src/ml/tensorboard.js';
import { TempProject } from './helpers.js';

// TensorBoard's own message definitions (tensorboard/compat/proto/event.proto, summary.proto),
// the fields ablate writes, decoded by protobufjs rather than by code of ours.
const PROTO = protobuf.parse(`syntax = "proto3";
package tensorflow;
message Event { double wall_time = 1; int64 step = 2; oneof what { string file_version = 3; Summary summary = 5; } }
message Summary {
  message Image { int32 height = 1; int32 width = 2; int32 colorspace = 3; bytes encoded_image_string = 4; }
  message Value { string node_name = 7; string tag = 1; oneof value { float simple_value = 2; Image image = 4; } }
  repeated Value value = 1;
}`).root;
const EventType = PROTO.lookupType('tensorflow.Event');

interface DecodedEvent {
  wallTime: number;
  step?: number;
  fileVersion?: string;
  summary?: {
    value: {
      tag: string;
      simpleValue?: number;
      image?: { height: number; width: number; colorspace: number; encodedImageString: Uint8Array };
    }[];
  };
}

/** Splits a TFRecord file, checking both masked CRCs of every record, and decodes each Event. */
function readEvents(bytes: Buffer): DecodedEvent[] {
  const events: DecodedEvent[] = [];
  for (let at = 0; at < bytes.length;) {
    const length = Number(bytes.readBigUInt64LE(at));
    assert.equal(bytes.readUInt32LE(at + 8), maskedCrc32c(bytes.subarray(at, at + 8)), `length CRC of the record at byte ${at}`);
    const data = bytes.subarray(at + 12, at + 12 + length);
    assert.equal(bytes.readUInt32LE(at + 12 + length), maskedCrc32c(data), `data CRC of the record at byte ${at}`);
    events.push(EventType.toObject(EventType.decode(data), { longs: Number }) as DecodedEvent);
    at += 12 + length + 4;
  }
  return events;
}

describe('TensorBoard event files', () => {
  it('CRC-32C and its mask match the published check values', () => {
    // RFC 3720 B.4: CRC-32C of "123456789" is 0xe3069283; of 32 zero bytes, 0x8a9136aa.
    assert.equal(crc32c(Buffer.from('123456789')), 0xe3069283);
    assert.equal(crc32c(Buffer.alloc(32)), 0x8a9136aa);
    const crc = 0xe3069283;
    assert.equal(maskedCrc32c(Buffer.from('123456789')), (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0);
  });

  it('frames a record as length, its CRC, the data, its CRC', () => {
    const record = tfRecord(Buffer.from('abc'));
    assert.equal(record.length, 8 + 4 + 3 + 4);
    assert.equal(record.readBigUInt64LE(0), 3n);
    assert.equal(record.subarray(12, 15).toString(), 'abc');
    assert.equal(record.readUInt32LE(15), maskedCrc32c(Buffer.from('abc')));
  });

  it('writes Events that TensorBoard’s protos decode: the version first, then scalars and images by step', () => {
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47]);
    const file = eventFile(
      [
        { wallTime: 1, step: 1, values: [{ tag: 'epoch_loss', scalar: 210.5 }] },
        {
          wallTime: 2,
          step: 2,
          values: [
            { tag: 'epoch_loss', scalar: 190.25 },
            { tag: 'img', png, height: 3, width: 5, colorspace: 1 },
          ],
        },
      ],
      0,
    );
    const events = readEvents(file);
    assert.deepEqual(events[0], { wallTime: 0, fileVersion: 'brain.Event:2' });
    assert.equal(events[1]!.step, 1);
    assert.deepEqual(events[1]!.summary!.value, [{ tag: 'epoch_loss', simpleValue: 210.5 }]);
    assert.equal(events[2]!.wallTime, 2);
    const image = events[2]!.summary!.value[1]!.image!;
    assert.deepEqual([image.height, image.width, image.colorspace], [3, 5, 1]);
    assert.deepEqual(Buffer.from(image.encodedImageString), png);
  });

  it('train-vae writes train and validation runs with every epoch’s losses and a reconstruction image, the same bytes on a rerun', () => {
    const p = new TempProject({
      'pipelines/t.yaml': `pipeline: t
stages:
  mnist: { uses: mnist, with: { limit_train: 120, limit_test: 20, validation: 0.25 } }
  prep: { uses: preprocess, in: { data: mnist } }
  train: { uses: train-vae, in: { data: prep }, with: { epochs: 3, batch_size: 30, hidden: 8, backend: wasm } }
`,
    });
    const run = p.cli(['run', 'pipelines/t.yaml', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    const history = JSON.parse(p.read('artifacts/t/train/history.json')) as Record<string, number>[];
    const dir = p.path('artifacts/t/train/tensorboard');
    assert.deepEqual(readdirSync(dir).sort(), ['train', 'validation']);
    const train = readEvents(readFileSync(`${dir}/train/${readdirSync(`${dir}/train`)[0]}`));
    const validation = readEvents(readFileSync(`${dir}/validation/events.out.tfevents.ablate`));
    assert.equal(train.length, 1 + 3);
    for (const [i, record] of history.entries()) {
      const byTag = (events: DecodedEvent[]) => Object.fromEntries(events[i + 1]!.summary!.value.map((v) => [v.tag, v]));
      const t = byTag(train);
      assert.equal(train[i + 1]!.step, record.epoch);
      // simple_value is a float: the history's doubles rounded to single precision.
      assert.equal(t.epoch_loss!.simpleValue, Math.fround(record.loss!));
      assert.equal(t.epoch_kl!.simpleValue, Math.fround(record.kl!));
      assert.equal(t.epoch_beta!.simpleValue, Math.fround(record.beta!));
      const v = byTag(validation);
      assert.equal(v.epoch_loss!.simpleValue, Math.fround(record.val_loss!));
      const image = v.reconstructions!.image!;
      const decoded = PNG.sync.read(Buffer.from(image.encodedImageString));
      assert.deepEqual([decoded.height, decoded.width], [image.height, image.width]);
      assert.ok(image.width > 8 * 32 && image.height > 2 * 32, `${image.width}×${image.height}: 8 originals over their reconstructions`);
    }
    const first = readFileSync(`${dir}/validation/events.out.tfevents.ablate`);
    const again = p.cli(['run', 'pipelines/t.yaml', '--plain', '--force', 'train']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /✓ train\s+done/);
    assert.deepEqual(
      readFileSync(`${dir}/validation/events.out.tfevents.ablate`),
      first,
      'an execution with the same fingerprint writes the same bytes',
    );
  });
});
