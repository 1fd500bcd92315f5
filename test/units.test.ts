import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { checkManifest, isSafeRelativePath } from '../src/runner/caching/confine.js';
import { pathParamValues, propertiesWithFormat } from '../src/runner/param-formats.js';
import { SlotPool } from '../src/runner/slot-pool.js';
import { seededRandom } from '../src/core/random.js';
import { displayPath, findUp, inDirectory, removeDirectory, removeFile, writeFileAtomic } from '../src/runner/fsutil.js';
import { CacheStore } from '../src/runner/caching/store.js';
import { ScratchDirs } from '../src/runner/scratch-dirs.js';
import { EtaEstimate, formatEta } from '../src/runner/logging/eta.js';
import { PlainReporter } from '../src/runner/logging/plain.js';
import { manifestDigest, subManifest, type Manifest } from '../src/runner/caching/manifest.js';
import { StatCache } from '../src/runner/caching/stat-cache.js';
import { redactRedisUrl } from '../src/runner/executor/bullmq.js';
import { codeDigest, importSpecifiers, packageNameOf } from '../src/runner/code-digest.js';
import { findCycle, topologicalOrder, withAncestors, withDescendants } from '../src/runner/dag.js';
import { describeReason, describeReasons, diffFingerprints, fingerprintDigest, type Fingerprint } from '../src/runner/fingerprint.js';
import { canonicalJson, hashBytes, type Digest } from '../src/runner/hashing.js';
import { interpolate, interpolateShellCommand, type InterpolationError } from '../src/runner/interpolate.js';
import { parseInputRef } from '../src/runner/plan.js';
import { publishedSchemaText } from '../src/runner/pipeline-schema.js';
import { nearestName } from '../src/runner/suggest.js';
import { builtinKindNames, loadStageKind, resolveStageRef } from '../src/core/registry.js';
import { repoRoot, TempProject } from './helpers.js';

describe('dag', () => {
  const graph = new Map([
    ['a', []],
    ['b', ['a']],
    ['c', ['a']],
    ['d', ['b', 'c']],
    ['e', []],
  ]);
  it('orders dependencies first and keeps insertion order otherwise', () => {
    assert.deepEqual(topologicalOrder(graph), ['a', 'b', 'c', 'd', 'e']);
    assert.deepEqual(
      topologicalOrder(
        new Map([
          ['x', ['y']],
          ['y', []],
        ]),
      ),
      ['y', 'x'],
    );
  });
  it('finds ancestors and descendants through a diamond', () => {
    assert.deepEqual([...withAncestors(graph, ['d'])].sort(), ['a', 'b', 'c', 'd']);
    assert.deepEqual([...withDescendants(graph, ['b'])].sort(), ['b', 'd']);
    assert.deepEqual([...withDescendants(graph, ['a'])].sort(), ['a', 'b', 'c', 'd']);
  });
  it('reports a cycle as a closed path, and none for a DAG', () => {
    assert.equal(findCycle(graph), undefined);
    assert.deepEqual(
      findCycle(
        new Map([
          ['a', ['b']],
          ['b', ['c']],
          ['c', ['a']],
        ]),
      ),
      ['a', 'b', 'c', 'a'],
    );
    assert.deepEqual(findCycle(new Map([['a', ['a']]])), ['a', 'a']);
  });
  it('handles a 100k-long chain without recursion', () => {
    const chain = new Map(Array.from({ length: 100_000 }, (_, i) => [`s${i}`, i ? [`s${i - 1}`] : []]));
    assert.equal(topologicalOrder(chain).length, 100_000);
    assert.equal(findCycle(chain), undefined);
  });
});

describe('canonical JSON and digests', () => {
  it('sorts keys at every level, drops undefined, and rejects NaN', () => {
    assert.equal(
      canonicalJson({ b: 1, a: { d: [1, { z: 0, y: null }], c: 'x' }, u: undefined }),
      '{"a":{"c":"x","d":[1,{"y":null,"z":0}]},"b":1}',
    );
    assert.equal(canonicalJson({ x: 1 }), canonicalJson(JSON.parse('{"x":1.0}')));
    assert.throws(() => canonicalJson({ x: Number.NaN }), /non-finite/);
  });

  it("a fingerprint's digest is the hash of its canonical JSON, its frozen code part serialized once and never stale", () => {
    const code = Object.freeze({ files: Object.freeze({ 'src/stages/shell.ts': 'a'.repeat(64) as Digest }), packages: Object.freeze({}) });
    const fingerprint = (n: number): Fingerprint =>
      ({ format: 3, kind: 'shell', code, params: { n }, seed: n, inputs: {}, deps: {}, environment: { node: 'v20' } }) as Fingerprint;
    for (let n = 0; n < 3; n++) assert.equal(fingerprintDigest(fingerprint(n)), hashBytes(canonicalJson(fingerprint(n))));
    // An unfrozen code part may change between calls: it is serialized every time.
    const open = { files: { 'a.ts': 'b'.repeat(64) as Digest }, packages: {} as Record<string, string> };
    const unfrozen = { ...fingerprint(0), code: open } as Fingerprint;
    const before = fingerprintDigest(unfrozen);
    open.packages.yaml = '2.8.0';
    assert.notEqual(fingerprintDigest(unfrozen), before);
    assert.equal(fingerprintDigest(unfrozen), hashBytes(canonicalJson(unfrozen)));
  });

  it('writes the same bytes as the first implementation, whose output every committed digest is', () => {
    // The original canonicalJson, kept here as the reference the faster one must equal.
    const reference = (value: unknown): string => {
      if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
      if (Array.isArray(value)) return `[${value.map((v) => reference(v === undefined ? null : v)).join(',')}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, v]) => v !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${reference(v)}`).join(',')}}`;
    };
    const random = seededRandom(7);
    const keys = ['a', 'B', 'é', '\u{1F600}', 'z', '10', '9', '', 'a"b', 'ﬀ'];
    const leaf = (): unknown => [1.5, -0, 1e21, 'x\n"y"', true, null, undefined, 0.1 + 0.2, '😀', () => 1][Math.floor(random() * 10)];
    const build = (depth: number): unknown => {
      const pick = random();
      if (depth > 3 || pick < 0.3) return leaf();
      if (pick < 0.6) return Array.from({ length: Math.floor(random() * 4) }, () => build(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(random() * 5) }, () => [keys[Math.floor(random() * keys.length)]!, build(depth + 1)]),
      );
    };
    for (const value of [[1, , 3], { a: [undefined, null] }, new Date(0), new Uint8Array([3, 1])])
      assert.equal(canonicalJson(value), reference(value));
    for (let i = 0; i < 2000; i++) {
      const value = build(0);
      assert.equal(canonicalJson(value), reference(value));
    }
    const lock = JSON.parse(readFileSync(join(repoRoot, 'pipelines', 'quickstart.lock.json'), 'utf8')) as {
      stages: Record<string, { fingerprint: unknown }>;
    };
    for (const entry of Object.values(lock.stages)) assert.equal(canonicalJson(entry.fingerprint), reference(entry.fingerprint));
  });

  it('sha256 of known input', () => {
    assert.equal(hashBytes('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
  it('manifest digests ignore sizes but not names or content; sub-manifests re-root', () => {
    const d = (s: string) => hashBytes(s);
    const m: Manifest = {
      'model/w.bin': { digest: d('w'), size: 1, executable: false },
      'model/model.json': { digest: d('j'), size: 1, executable: false },
      'h.json': { digest: d('h'), size: 1, executable: false },
    };
    assert.deepEqual(Object.keys(subManifest(m, 'model/')), ['w.bin', 'model.json']);
    assert.deepEqual(Object.keys(subManifest(m, 'h.json')), ['h.json']);
    assert.notEqual(manifestDigest({ a: m['h.json']! }), manifestDigest({ b: m['h.json']! }));
    assert.equal(manifestDigest({ a: m['h.json']! }), manifestDigest({ a: { ...m['h.json']!, size: 99 } }));
  });
});

describe('the store, materializing', () => {
  it('puts back small and big files byte for byte with their modes, replacing what the folder held', () => {
    const root = mkdtempSync(join(tmpdir(), 'ablate-store-'));
    const produced = join(root, 'out');
    mkdirSync(join(produced, 'sub'), { recursive: true });
    const big = Buffer.alloc((1 << 20) + 3, 7);
    writeFileSync(join(produced, 'small.txt'), 'small');
    writeFileSync(join(produced, 'sub', 'big.bin'), big);
    writeFileSync(join(produced, 'run.sh'), '#!/bin/sh\n', { mode: 0o755 });
    const store = new CacheStore(join(root, 'cache'));
    const manifest = store.ingest(produced);
    const target = join(root, 'artifacts', 'stage');
    mkdirSync(target, { recursive: true });
    writeFileSync(join(target, 'stale.txt'), 'from before');
    for (let pass = 0; pass < 2; pass++) {
      store.materialize(manifest, target, StatCache.inMemory());
      assert.deepEqual(readdirSync(target).sort(), ['run.sh', 'small.txt', 'sub']);
      assert.equal(readFileSync(join(target, 'small.txt'), 'utf8'), 'small');
      assert.ok(readFileSync(join(target, 'sub', 'big.bin')).equals(big));
      assert.equal(statSync(join(target, 'run.sh')).mode & 0o777, 0o755);
      assert.equal(statSync(join(target, 'sub', 'big.bin')).mode & 0o777, 0o644);
    }
    assert.deepEqual(readdirSync(join(root, 'artifacts')), ['stage'], 'no staging or old folder left beside it');
    rmSync(root, { recursive: true, force: true });
  });
});

describe('scratch folders for stage outputs', () => {
  it('hands an emptied folder to the next stage under a new name, removes one with files left, and removes the kept ones at the end', () => {
    const root = mkdtempSync(join(tmpdir(), 'ablate-scratch-'));
    const scratch = new ScratchDirs(join(root, 'tmp'));
    const first = scratch.take();
    assert.deepEqual(readdirSync(first), []);
    scratch.give(first);
    assert.ok(!existsSync(first), 'given back under another name');
    const second = scratch.take();
    assert.notEqual(second, first);
    assert.deepEqual(readdirSync(join(root, 'tmp')), [basename(second)], 'the same folder, renamed: none was made');
    writeFileSync(join(second, 'left.txt'), 'x');
    scratch.give(second);
    assert.deepEqual(readdirSync(join(root, 'tmp')), [], 'a folder with files left in it is removed');
    const [third, fourth] = [scratch.take(), scratch.take()];
    scratch.give(third);
    scratch.give(fourth);
    assert.equal(readdirSync(join(root, 'tmp')).length, 2);
    scratch.dispose();
    assert.deepEqual(readdirSync(join(root, 'tmp')), []);
    rmSync(root, { recursive: true, force: true });
  });
});

describe('file helpers', () => {
  it('create parent folders only when the write fails for their lack, and remove what is there', () => {
    const root = mkdtempSync(join(tmpdir(), 'ablate-fs-'));
    const deep = join(root, 'a', 'b', 'c.txt');
    inDirectory(deep, () => writeFileSync(deep, 'x'));
    assert.equal(readFileSync(deep, 'utf8'), 'x');
    assert.throws(() => inDirectory(join(root, 'a', 'b'), () => mkdirSync(join(root, 'a', 'b'))), /EEXIST/, 'other errors pass through');
    writeFileAtomic(join(root, 'new', 'dir', 'f.json'), '{}');
    assert.equal(readFileSync(join(root, 'new', 'dir', 'f.json'), 'utf8'), '{}');
    assert.deepEqual(readdirSync(join(root, 'new', 'dir')), ['f.json'], 'no temporary left');
    removeFile(deep);
    removeFile(deep);
    assert.ok(!existsSync(deep));
    removeDirectory(join(root, 'a', 'b'));
    removeDirectory(join(root, 'new'));
    removeDirectory(join(root, 'absent'));
    assert.deepEqual(readdirSync(root), ['a']);
    assert.equal(
      findUp(join(root, 'a', 'b'), (dir) => existsSync(join(dir, 'a'))),
      root,
    );
    assert.equal(
      findUp(join(root, 'a'), (dir) => dir === join(root, 'a')),
      join(root, 'a'),
      'the start itself counts',
    );
    assert.equal(
      findUp(root, () => false),
      undefined,
    );
    rmSync(root, { recursive: true, force: true });
  });
});

describe('stat cache', () => {
  it('trusts a recorded digest only while the file is unchanged', async () => {
    const p = new TempProject({ 'f.txt': 'one' });
    const file = p.path('f.txt');
    const cache = StatCache.load(p.path('.ablate/stat.json'));
    assert.equal(await cache.digestOf(file), hashBytes('one'));
    assert.equal(cache.lookup(file, statSync(file)), hashBytes('one'));
    writeFileSync(file, 'two');
    assert.equal(cache.lookup(file, statSync(file)), undefined);
    assert.equal(await cache.digestOf(file), hashBytes('two'));
    cache.save();
    const reloaded = StatCache.load(p.path('.ablate/stat.json'));
    assert.equal(reloaded.lookup(file, statSync(file)), hashBytes('two'));
    writeFileSync(p.path('.ablate/stat.json'), '{ damaged');
    assert.equal(StatCache.load(p.path('.ablate/stat.json')).lookup(file, statSync(file)), undefined);
  });
});

describe('interpolation', () => {
  const scope = { params: { epochs: 3, name: 'mnist', list: [1, 2] }, matrix: { beta: 4 } };
  it('keeps the type of a whole-string reference and splices text otherwise', () => {
    const errors: InterpolationError[] = [];
    assert.deepEqual(
      interpolate(
        {
          e: '${params.epochs}',
          b: '${matrix.beta}',
          s: 'run-${params.name}-b${matrix.beta}',
          l: '${params.list}',
          n: ['${params.epochs}', 5],
          shell: 'echo ${HOME} $X',
        },
        scope,
        errors,
      ),
      { e: 3, b: 4, s: 'run-mnist-b4', l: [1, 2], n: [3, 5], shell: 'echo ${HOME} $X' },
    );
    assert.deepEqual(errors, []);
  });
  it('reports unknown names with their path and a suggestion', () => {
    const errors: InterpolationError[] = [];
    interpolate({ deep: [{ x: 'a ${params.epoch} b' }], y: '${matrx.beta}' }, scope, errors);
    assert.deepEqual(
      errors.map((e) => [e.path, e.suggestion]),
      [
        [['deep', 0, 'x'], '${params.epochs}'],
        [['y'], '${matrix.beta}'],
      ],
    );
  });
});

describe('fingerprint diffs', () => {
  const base: Fingerprint = {
    format: 3,
    kind: 'train-vae',
    code: { files: { 'src/stages/train-vae.ts': 'a' as Digest }, packages: { yaml: '2.8.0' } },
    params: { beta: 1, latent_dim: 2 },
    seed: 1,
    inputs: { data: 'x' as Digest },
    deps: {},
    environment: {},
  };
  it('lists each changed field as a value diff', () => {
    const after: Fingerprint = {
      ...base,
      code: { files: { 'src/stages/train-vae.ts': 'b' as Digest, 'src/stages/vae/model.ts': 'c' as Digest }, packages: { yaml: '2.9.1' } },
      params: { beta: 4, latent_dim: 2, lr: 0.001 },
      inputs: { data: 'y' as Digest },
    };
    assert.deepEqual(
      diffFingerprints(base, after).map((r) => describeReason(r, 'train-vae')),
      [
        'train-vae code changed: src/stages/train-vae.ts modified',
        'train-vae code changed: src/stages/vae/model.ts added',
        'package yaml 2.8.0 → 2.9.1',
        'param beta 1 → 4',
        'param lr (unset) → 0.001',
        'input data changed',
      ],
    );
    assert.deepEqual(describeReasons(diffFingerprints(base, after), 'train-vae').slice(0, 2), [
      'train-vae code changed: src/stages/train-vae.ts modified; src/stages/vae/model.ts added',
      'package yaml 2.8.0 → 2.9.1',
    ]);
    assert.deepEqual(diffFingerprints(base, base), []);
    assert.deepEqual(diffFingerprints(undefined, base), [{ type: 'new' }]);
    // An entry written by an older ablate (another format) is reported as such, never misread.
    const { environment: _dropped, ...older } = base;
    assert.deepEqual(diffFingerprints({ ...older, format: 1 } as unknown as Fingerprint, base), [{ type: 'format' }]);
  });
});

describe('what a code digest covers', () => {
  it('the report depends on no runner module, so a runner refactor does not rerun every report', () => {
    const files = Object.keys(codeDigest(join(repoRoot, 'src/stages/report.ts'), repoRoot).files);
    assert.deepEqual(
      files.filter((f) => f.startsWith('src/runner/')),
      [],
      files.join(', '),
    );
    assert.ok(files.includes('src/core/contract.ts'));
  });
});

describe('code digests', () => {
  it('finds static, re-exported, type-only and dynamic imports', () => {
    const source = `import a from './a.js';\nimport type { B } from "./b.js";\nexport { c } from './c.js';\nimport './side.js';\nconst tf = await import('@tensorflow/tfjs');\nimport {\n  x,\n  y,\n} from 'yaml/dist/x';\nconst r = require('node:fs');`;
    assert.deepEqual(importSpecifiers(source).sort(), [
      './a.js',
      './b.js',
      './c.js',
      './side.js',
      '@tensorflow/tfjs',
      'node:fs',
      'yaml/dist/x',
    ]);
    assert.equal(packageNameOf('@tensorflow/tfjs-node/dist/x'), '@tensorflow/tfjs-node');
    assert.equal(packageNameOf('yaml/dist/x'), 'yaml');
    assert.equal(packageNameOf('fs'), undefined);
    assert.equal(packageNameOf('./x.js'), undefined);
  });
});

describe('small pieces', () => {
  it('parses input references', () => {
    assert.deepEqual(parseInputRef('vae'), { stage: 'vae', gather: false });
    assert.deepEqual(parseInputRef('eval[*]'), { stage: 'eval', gather: true });
    assert.deepEqual(parseInputRef('vae.model'), { stage: 'vae', gather: false, output: 'model' });
    assert.deepEqual(parseInputRef('eval[*].metrics.json'), { stage: 'eval', gather: true, output: 'metrics.json' });
  });
  it('suggests near names only', () => {
    assert.equal(nearestName('trian-vae', ['train-vae', 'evaluate']), 'train-vae');
    assert.equal(nearestName('gne', ['gen', 'prep']), 'gen');
    assert.equal(nearestName('xyz', ['train-vae', 'evaluate']), undefined);
  });
  it('every built-in stage kind has a valid params schema that rejects unknown params', async () => {
    const { Ajv } = await import('ajv');
    const checker = new Ajv({ strict: true, allowUnionTypes: true });
    for (const name of builtinKindNames) {
      const kind = await loadStageKind(resolveStageRef(name, repoRoot)!);
      assert.ok(checker.validateSchema(kind.params), `${name}: ${checker.errorsText()}`);
      assert.equal((kind.params as { additionalProperties?: unknown }).additionalProperties, false, `${name} must reject unknown params`);
    }
  });

  it('the published JSON Schema is up to date (npm run schema)', () => {
    assert.equal(readFileSync(`${repoRoot}/schema/pipeline.schema.json`, 'utf8'), publishedSchemaText());
  });
});

describe('redactRedisUrl', () => {
  it('hides a password and leaves everything else as written', () => {
    assert.equal(redactRedisUrl('redis://:SECRET@10.0.0.5:6390'), 'redis://:***@10.0.0.5:6390');
    assert.equal(redactRedisUrl('rediss://ops:p4ss@redis.example:6380/2'), 'rediss://ops:***@redis.example:6380/2');
    assert.equal(redactRedisUrl('redis://127.0.0.1:6390'), 'redis://127.0.0.1:6390');
    assert.equal(redactRedisUrl('redis://user@host:6379'), 'redis://user@host:6379');
  });
});

describe('slot pool', () => {
  it('hands out slots in arrival order; a wide request waits for enough free slots and is not overtaken', async () => {
    const pool = new SlotPool(2);
    const order: string[] = [];
    assert.equal(await pool.take(1), 1);
    const wide = pool.take(2).then((n) => order.push(`wide:${n}`));
    const narrow = pool.take(1).then((n) => order.push(`narrow:${n}`));
    await Promise.resolve();
    assert.deepEqual(order, [], 'one slot is free, but the wide request came first');
    pool.give(1);
    await wide;
    assert.deepEqual(order, ['wide:2']);
    pool.give(2);
    await narrow;
    assert.deepEqual(order, ['wide:2', 'narrow:1']);
  });

  it('a request for more than the pool holds takes the whole pool', async () => {
    assert.equal(await new SlotPool(1).take(4), 1);
  });
});

describe('confinement of recorded paths', () => {
  it('accepts paths below a directory and refuses every way out', () => {
    for (const ok of ['a', 'model/encoder/weights.bin', 'x..y', '.hidden']) assert.ok(isSafeRelativePath(ok), ok);
    for (const bad of ['', '..', '../x', 'a/../../x', '/etc/passwd', 'a//b', './a', 'a\\..\\b', 'a\0b'])
      assert.ok(!isSafeRelativePath(bad), bad);
  });

  it('a manifest with an escaping path or a non-digest is refused, naming its source', () => {
    const digest = 'a'.repeat(64) as Digest;
    assert.doesNotThrow(() => checkManifest({ 'ok.txt': { digest, size: 1, executable: false } }, 'x'));
    assert.throws(
      () => checkManifest({ '../../../x': { digest, size: 1, executable: false } }, 'cache record R'),
      /cache record R names an output '\.\.\/\.\.\/\.\.\/x' outside its directory/,
    );
    assert.throws(
      () => checkManifest({ 'a.txt': { digest: '../../etc/passwd' as Digest, size: 1, executable: false } }, 'm'),
      /invalid digest/,
    );
  });
});

describe('params the runner reads off a schema', () => {
  const schema = {
    type: 'object',
    properties: {
      path: { type: 'string', format: 'path' },
      deps: { type: 'array', items: { type: 'string', format: 'path' } },
      cmd: { type: 'string', format: 'shell-command' },
      name: { type: 'string' },
    },
  };
  it('collects every path a param names, single or in arrays', () => {
    assert.deepEqual(pathParamValues(schema, { path: 'data', deps: ['a.txt', 'b/'], name: 'not a path' }), ['data', 'a.txt', 'b/']);
    assert.deepEqual(propertiesWithFormat(schema, 'shell-command'), ['cmd']);
  });

  it('a shell command gets variables, never values, in its text', () => {
    const errors: InterpolationError[] = [];
    const command = interpolateShellCommand(
      'echo "${params.msg}" ${matrix.v} $HOME',
      { params: { msg: '$(touch /tmp/x); rm -rf ~' }, matrix: { v: 'a; b' } },
      errors,
      ['cmd'],
    );
    assert.deepEqual(errors, []);
    assert.equal(command.text, 'echo "${ABLATE_PARAM_msg}" ${ABLATE_MATRIX_v} $HOME');
    assert.deepEqual(command.vars, { ABLATE_PARAM_msg: '$(touch /tmp/x); rm -rf ~', ABLATE_MATRIX_v: 'a; b' });
  });
});

describe('paths in messages', () => {
  it('are relative to where the user is, unless they lie outside it', () => {
    assert.equal(displayPath('/work/p/pipelines/a.lock.json', '/work/p'), 'pipelines/a.lock.json');
    assert.equal(displayPath('/work/p/pipelines/a.lock.json', '/work/p/pipelines'), 'a.lock.json');
    assert.equal(displayPath('/work/other/a.lock.json', '/work/p'), '/work/other/a.lock.json');
    assert.equal(displayPath('/work/p', '/work/p'), '/work/p', 'the directory itself stays named');
  });
});

describe('the line-per-event display', () => {
  it('throttles progress to one line per stage per interval, but prints every log line', async () => {
    let text = '';
    const out = new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    });
    const reporter = new PlainReporter(out);
    reporter.event({ type: 'plan', ids: ['fit', 'other'] });
    reporter.event({ type: 'start', id: 'fit', reasons: ['never ran'] });
    for (let epoch = 1; epoch <= 3; epoch++) {
      reporter.event({ type: 'progress', id: 'fit', message: `epoch ${epoch}/3` });
      reporter.event({ type: 'log', id: 'fit', line: `epoch ${epoch}: val ${10 - epoch}` });
    }
    reporter.event({ type: 'done', id: 'fit', durationMs: 1200 });
    await reporter.close();
    assert.equal(
      text,
      [
        '▶ fit    running: never ran',
        '· fit    epoch 1/3',
        '› fit    epoch 1: val 9',
        '› fit    epoch 2: val 8',
        '› fit    epoch 3: val 7',
        '✓ fit    done in 1.2 s',
        '',
      ].join('\n'),
    );
  });
});

describe('ETA of a stage that reports its fraction done', () => {
  it('extrapolates the rate since the first report, not since the start', () => {
    const eta = new EtaEstimate();
    assert.equal(eta.update(10_000, 0.1), undefined, 'one report says nothing about the rate');
    // 0.1 → 0.3 took 4 s: 20 s per whole, 0.7 left → 14 s.
    assert.equal(eta.update(14_000, 0.3), 14_000);
    assert.equal(eta.update(15_000, 1), undefined, 'done');
    assert.equal(eta.update(16_000, 0.05), undefined, 'a stage that starts over (a retry) starts the estimate over');
  });

  it('reads as seconds, minutes or hours', () => {
    assert.deepEqual([formatEta(42_400), formatEta(185_000), formatEta(4_330_000)], ['42 s', '3 min 05 s', '1 h 12 min']);
  });
});
