// The cache never lies: one test per way it did (issue 12). Each runs the product as a user
// would (the library API or the CLI in a throwaway project) and checks what reaches the disk.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { StatCache } from '../src/runner/caching/stat-cache.js';
import { CacheStore } from '../src/runner/caching/store.js';
import { fingerprintDigest, type FingerprintDigest } from '../src/runner/fingerprint.js';
import { hashBytes } from '../src/runner/hashing.js';
import { readLockfile } from '../src/runner/lockfile.js';
import { pipelineStatus } from '../src/runner/status.js';
import { workspaceAt } from '../src/runner/workspace.js';
import { loadNativeAddon } from '../src/ml/native-addon.js';
import { idx, repoRoot, TempProject } from './helpers.js';

describe('files named by params are fingerprinted', () => {
  it("changing the labels behind mnist's `path:` makes the stage stale and reruns it", async () => {
    const p = new TempProject({ 'pipelines/d.yaml': 'pipeline: d\nstages:\n  data: { uses: mnist, with: { path: idx } }\n' });
    const images = new Uint8Array(40 * 16).map((_, k) => k % 251);
    const write = (labels: Uint8Array) => {
      mkdirSync(p.path('pipelines/idx'), { recursive: true });
      writeFileSync(p.path('pipelines/idx/train-images-idx3-ubyte'), idx([40, 4, 4], images));
      writeFileSync(p.path('pipelines/idx/train-labels-idx1-ubyte'), idx([40], labels));
      writeFileSync(p.path('pipelines/idx/t10k-images-idx3-ubyte'), idx([20, 4, 4], images.subarray(0, 320)));
      writeFileSync(p.path('pipelines/idx/t10k-labels-idx1-ubyte'), idx([20], labels.subarray(0, 20)));
    };
    write(new Uint8Array(40).map((_, i) => i % 10));
    assert.deepEqual((await p.run('pipelines/d.yaml')).ran, ['data']);
    write(new Uint8Array(40).map((_, i) => (i + 3) % 10));
    const [status] = await pipelineStatus(await p.plan('pipelines/d.yaml'), workspaceAt(p.root));
    assert.equal(status!.state, 'stale');
    assert.deepEqual(status!.explanation, ['dep idx changed']);
    assert.deepEqual((await p.run('pipelines/d.yaml')).ran, ['data']);
  });
});

describe('nothing leaves the workspace', () => {
  it('`pipeline: ..` is refused at validation, and no stage can replace a workspace folder', () => {
    const p = new TempProject({ 'pipelines/up.yaml': 'pipeline: ..\nstages:\n  src: { uses: shell, with: { cmd: "true" } }\n' });
    mkdirSync(p.path('src'));
    writeFileSync(p.path('src/keep.txt'), 'mine');
    const r = p.cli(['run', 'pipelines/up.yaml']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /pipelines\/up\.yaml:1:11: error: invalid value "\.\.": expected one folder name.*\(at pipeline\)/);
    assert.equal(readFileSync(p.path('src/keep.txt'), 'utf8'), 'mine');
  });

  it('a crafted cache record whose output is ../../../x fails the stage and writes nothing outside', async () => {
    const p = new TempProject({ 'pipelines/t.yaml': 'pipeline: t\nstages:\n  a: { uses: ./stages/emit.ts, with: { value: 1 } }\n' });
    await p.run('pipelines/t.yaml');
    const digest = readLockfile(p.path('pipelines/t.lock.json'))!.stages.a!.digest;
    const recordFile = p.path(`.ablate/cache/runs/${digest.slice(0, 2)}/${digest.slice(2)}.json`);
    const record = JSON.parse(readFileSync(recordFile, 'utf8')) as { outputs: Record<string, unknown> };
    const [entry] = Object.values(record.outputs);
    record.outputs = { '../../../escaped.txt': entry };
    rmSync(recordFile);
    writeFileSync(recordFile, JSON.stringify(record));
    rmSync(p.path('artifacts'), { recursive: true });
    const result = await p.run('pipelines/t.yaml');
    assert.deepEqual(result.failed, ['a']);
    const failure = result.events.find((e) => e.type === 'failed');
    assert.match(
      failure && 'message' in failure ? failure.message : '',
      /names an output '\.\.\/\.\.\/\.\.\/escaped\.txt' outside its directory; it was not used/,
    );
    for (const dir of [p.root, join(p.root, '..'), join(p.root, 'artifacts')]) assert.ok(!existsSync(join(dir, 'escaped.txt')), dir);
  });

  it("a worker's manifest with ../ is refused before anything is written", () => {
    const root = mkdtempSync(join(tmpdir(), 'ablate-store-'));
    const store = new CacheStore(join(root, 'cache'));
    const content = Buffer.from('evil');
    mkdirSync(join(root, 'cache/objects', hashBytes(content).slice(0, 2)), { recursive: true });
    writeFileSync(store.objectPath(hashBytes(content)), content);
    const manifest = {
      'ok.txt': { digest: hashBytes(content), size: 4, executable: false },
      '../../outside.txt': { digest: hashBytes(content), size: 4, executable: false },
    };
    assert.throws(
      () => store.materialize(manifest, join(root, 'a', 'b', 'out'), StatCache.inMemory(), 'the manifest a worker returned for x'),
      /the manifest a worker returned for x names an output '\.\.\/\.\.\/outside\.txt'/,
    );
    assert.ok(!existsSync(join(root, 'a', 'outside.txt')) && !existsSync(join(root, 'a', 'b', 'out')), 'nothing was written');
  });

  it('params and matrix values reach a shell command as data, never as code', async () => {
    const marker = join(mkdtempSync(join(tmpdir(), 'ablate-shell-')), 'pwned');
    const p = new TempProject({
      'pipelines/s.yaml': `pipeline: s
params: { msg: hello }
stages:
  echo:
    uses: shell
    matrix: { v: ["a; touch ${marker}-matrix", "b"] }
    with: { cmd: 'printf "%s|%s" "\${params.msg}" "\${matrix.v}" > $ABLATE_OUT/out.txt', outs: [out.txt] }
`,
    });
    const result = await p.run('pipelines/s.yaml', { overrides: [`msg=$(touch ${marker}-set)`] });
    assert.deepEqual(result.failed, []);
    assert.ok(!existsSync(`${marker}-set`) && !existsSync(`${marker}-matrix`), 'no value ran as a command');
    const folder = readFileSync(p.path(`artifacts/s/echo/v=a; touch ${marker.replace(/\//g, '%2f')}-matrix/out.txt`), 'utf8');
    assert.equal(folder, `$(touch ${marker}-set)|a; touch ${marker}-matrix`);
  });

  it('a stage module outside the workspace is not imported unless allowed, and validate says what it imports', () => {
    const outside = mkdtempSync(join(tmpdir(), 'ablate-evil-'));
    const marker = join(outside, 'ran');
    writeFileSync(
      join(outside, 'evil.mjs'),
      `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(marker)}, 'top level ran');\nexport default { name: 'evil', params: { type: 'object' }, inputs: {}, outputs: () => ({}), run: async () => {} };\n`,
    );
    const p = new TempProject({
      'pipelines/e.yaml': `pipeline: e\nstages:\n  x: { uses: ${join(outside, 'evil.mjs')} }\n  y: { uses: ./stages/emit.ts, with: { value: 1 } }\n`,
    });
    const refused = p.cli(['validate', 'pipelines/e.yaml']);
    assert.equal(refused.status, 2);
    assert.match(
      refused.stderr,
      /stage module '.*evil\.mjs' is outside the workspace .*it was not imported, since importing runs its code/,
    );
    assert.ok(!existsSync(marker), "the module's top level did not run");
    const allowed = p.cli(['validate', '--allow-outside-modules', 'pipelines/e.yaml']);
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stdout, /imported stage module .*evil\.mjs/);
    assert.match(allowed.stdout, /imported stage module pipelines\/stages\/emit\.ts/);
  });
});

describe('lockfile and cache agree', () => {
  it('plain verify finds a flipped byte in a cache object and removes it; run repairs a lockfile entry the cache contradicts', async () => {
    const p = new TempProject({ 'pipelines/t.yaml': 'pipeline: t\nstages:\n  a: { uses: ./stages/emit.ts, with: { value: 1 } }\n' });
    p.cli(['run', 'pipelines/t.yaml']);
    const lockPath = p.path('pipelines/t.lock.json');
    const good = readFileSync(lockPath, 'utf8');
    const digest = readLockfile(lockPath)!.stages.a!.outputs['value.json']!.digest;
    const object = p.path(`.ablate/cache/objects/${digest.slice(0, 2)}/${digest.slice(2)}`);
    const bytes = readFileSync(object);
    bytes[0] = bytes[0]! ^ 1;
    rmSync(object);
    writeFileSync(object, bytes);
    const verify = p.cli(['verify']);
    assert.equal(verify.status, 1);
    assert.match(verify.stderr, /cache object .* does not match its digest; it was removed/);
    assert.ok(!existsSync(object));

    writeFileSync(lockPath, good.replace(digest, 'f'.repeat(64)));
    assert.equal(p.cli(['verify']).status, 1);
    const run = p.cli(['run', 'pipelines/t.yaml']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(readFileSync(lockPath, 'utf8'), good, 'the entry is what the cache and the artifacts say again');
    assert.equal(p.cli(['verify']).status, 0);
  });

  it('a shared cache record replaced by another workspace wins over a lockfile whose check it passed before', () => {
    // Two workspaces, one store; the stage is not deterministic, so the same fingerprint gives other bytes.
    const pipeline = `pipeline: n
stages:
  draw: { uses: shell, with: { cmd: 'od -An -N8 -tx1 /dev/urandom > $ABLATE_OUT/o.txt', outs: [o.txt] } }
  copy: { uses: shell, in: { d: draw }, with: { cmd: 'cp $ABLATE_IN_D/o.txt $ABLATE_OUT/c.txt', outs: [c.txt] } }
`;
    const env = { ABLATE_CACHE_DIR: mkdtempSync(join(tmpdir(), 'ablate-shared-cache-')) };
    const [a, b] = [new TempProject({ 'pipelines/n.yaml': pipeline }), new TempProject({ 'pipelines/n.yaml': pipeline })];
    const run = (p: TempProject, args: string[] = []) => {
      const r = p.cli(['run', 'pipelines/n.yaml', '--plain', ...args], env);
      assert.equal(r.status, 0, r.stderr);
      return r.stdout;
    };
    run(a);
    // Twice up to date: the second finds the records where the first left them (the stat cache remembers them).
    assert.match(run(a), /0 ran, 2 up to date/);
    assert.match(run(a), /0 ran, 2 up to date/);
    run(b, ['--force']);
    const drawn = b.read('artifacts/n/draw/o.txt');
    assert.notEqual(a.read('artifacts/n/draw/o.txt'), drawn);

    assert.match(run(a), /0 ran, 0 up to date, 2 restored/);
    assert.equal(a.read('artifacts/n/draw/o.txt'), drawn);
    assert.equal(a.read('artifacts/n/copy/c.txt'), drawn);
    assert.deepEqual(readLockfile(a.path('pipelines/n.lock.json'))!.stages, readLockfile(b.path('pipelines/n.lock.json'))!.stages);
    assert.match(run(a), /0 ran, 2 up to date/);
  });
});

describe('verify --recompute', () => {
  it('re-executes in scratch space: identical bytes for a deterministic pipeline, nothing in the workspace touched', () => {
    const p = new TempProject({
      'pipelines/t.yaml':
        'pipeline: t\nstages:\n  a: { uses: ./stages/emit.ts, with: { value: 2 } }\n  p: { uses: ./stages/parity.ts, in: { value: a } }\n',
    });
    assert.equal(p.cli(['run', 'pipelines/t.yaml']).status, 0);
    const lock = readFileSync(p.path('pipelines/t.lock.json'), 'utf8');
    const runs = spawnSync('find', [p.path('.ablate/cache'), p.path('artifacts'), '-type', 'f'], { encoding: 'utf8' })
      .stdout.split('\n')
      .sort();
    const r = p.cli(['verify', '--recompute', 'pipelines/t.yaml']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /identical bytes\s+a\n/);
    assert.match(r.stdout, /identical bytes\s+p\n/);
    assert.match(r.stdout, /verify --recompute: 2 identical bytes .*passed/);
    assert.equal(readFileSync(p.path('pipelines/t.lock.json'), 'utf8'), lock);
    assert.deepEqual(
      spawnSync('find', [p.path('.ablate/cache'), p.path('artifacts'), '-type', 'f'], { encoding: 'utf8' })
        .stdout.split('\n')
        .sort(),
      runs,
    );
    const one = p.cli(['verify', '--recompute', 'pipelines/t.yaml', 'p']);
    assert.equal(one.status, 0, one.stdout + one.stderr);
    assert.doesNotMatch(one.stdout, /\ba\n/, 'only the selected stage is recomputed; its input comes from the recorded artifacts');
  });

  it('a stage whose bytes change under the same fingerprint fails it, naming the files', () => {
    const p = new TempProject({
      'pipelines/n.yaml':
        'pipeline: n\nstages:\n  clock: { uses: shell, with: { cmd: "date +%s%N > $ABLATE_OUT/now.txt", outs: [now.txt] } }\n',
    });
    assert.equal(p.cli(['run', 'pipelines/n.yaml']).status, 0);
    const r = p.cli(['verify', '--recompute', 'pipelines/n.yaml']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /DIFFERS \(same fingerprint\)\s+clock: files differ: artifacts\/n\/clock\/now\.txt/);
  });
});

const native = loadNativeAddon();

describe('numeric classes', { skip: 'error' in native ? native.error : false }, () => {
  it("a stage on the native route records oneDNN's ISA; another ISA makes it stale, named in status", () => {
    const p = new TempProject({
      'pipelines/q.yaml': `pipeline: q
stages:
  mnist: { uses: mnist, with: { limit_train: 64, limit_test: 32 } }
  prep: { uses: preprocess, in: { data: mnist } }
  train: { uses: train-vae, in: { data: prep }, with: { epochs: 1, batch_size: 32, hidden: 8, backend: native } }
`,
    });
    const run = p.cli(['run', 'pipelines/q.yaml']);
    assert.equal(run.status, 0, run.stderr);
    const entry = readLockfile(p.path('pipelines/q.lock.json'))!.stages;
    const isa = (native as { addon: { cpuIsa(): string } }).addon.cpuIsa();
    assert.equal(entry.train!.fingerprint.environment.cpu, isa);
    assert.equal(entry.mnist!.fingerprint.environment.cpu, undefined, 'data stages do not depend on the CPU');
    assert.equal(
      entry.mnist!.fingerprint.environment.node,
      process.version,
      "every stage records Node's version: its zlib writes PNG bytes",
    );
    // verify --recompute under another class compares numbers, not bytes, and names the fact.
    const recomputed = p.cli(['verify', '--recompute', 'pipelines/q.yaml', 'train', '--rtol', '1'], { DNNL_MAX_CPU_ISA: 'SSE41' });
    assert.equal(recomputed.status, 0, recomputed.stdout + recomputed.stderr);
    assert.match(recomputed.stdout, new RegExp(`(identical bytes|within rtol 1)\\s+train: cpu ${isa} → sse41`));
    const other = p.cli(['status', 'pipelines/q.yaml'], { DNNL_MAX_CPU_ISA: 'SSE41' });
    assert.match(other.stdout, new RegExp(`stale\\s+train\\s+cpu ${isa} → sse41`));
    assert.match(other.stdout, /up to date\s+prep/);
    const rerun = p.cli(['run', 'pipelines/q.yaml'], { DNNL_MAX_CPU_ISA: 'SSE41' });
    assert.match(rerun.stdout, /q: 1 ran, 2 up to date/);
    assert.notEqual(
      fingerprintDigest(entry.train!.fingerprint) as FingerprintDigest,
      readLockfile(p.path('pipelines/q.lock.json'))!.stages.train!.digest,
    );
  });
});

describe('the code that runs is the code that is hashed', () => {
  it('an edit to a built-in stage rebuilds dist/ before it runs, so its result is computed by the edited code', () => {
    const copy = mkdtempSync(join(tmpdir(), 'ablate-checkout-'));
    for (const entry of ['src', 'scripts', 'bin', 'package.json', 'tsconfig.json'])
      cpSync(join(repoRoot, entry), join(copy, entry), { recursive: true });
    symlinkSync(join(repoRoot, 'node_modules'), join(copy, 'node_modules'));
    assert.equal(spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: copy }).status, 0);
    writeFileSync(
      join(copy, 'pipelines.yaml'),
      'pipeline: e\nstages:\n  s: { uses: shell, with: { cmd: \'printf "%s" "$ABLATE_EDITED" > $ABLATE_OUT/o.txt\', outs: [o.txt] } }\n',
    );
    const cli = (args: string[]) =>
      spawnSync(process.execPath, [join(copy, 'bin/ablate.js'), ...args], {
        cwd: copy,
        encoding: 'utf8',
        env: { ...process.env, CI: '1' },
      });
    assert.equal(cli(['run', 'pipelines.yaml']).status, 0);
    assert.equal(readFileSync(join(copy, 'artifacts/e/s/o.txt'), 'utf8'), '');
    const shell = join(copy, 'src/stages/shell.ts');
    writeFileSync(
      shell,
      readFileSync(shell, 'utf8').replace('ABLATE_STAGE: ctx.stageId', "ABLATE_STAGE: ctx.stageId, ABLATE_EDITED: 'yes'"),
    );
    const status = cli(['status', 'pipelines.yaml']);
    assert.match(status.stderr, /rebuilt dist\/ .*src\/stages\/shell\.ts changed since the last build/);
    assert.match(status.stdout, /stale\s+s\s+shell code changed: src\/stages\/shell\.ts modified/);
    const run = cli(['run', 'pipelines.yaml']);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(readFileSync(join(copy, 'artifacts/e/s/o.txt'), 'utf8'), 'yes', 'the edited code ran');
    assert.match(cli(['status', 'pipelines.yaml']).stdout, /up to date\s+s/);
    rmSync(copy, { recursive: true, force: true });
  });
});
