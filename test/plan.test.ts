import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ParseCache } from '../src/runner/caching/parse-cache.js';
import { loadPipeline, type Plan } from '../src/runner/plan.js';
import { repoRoot, TempProject } from './helpers.js';

describe('plan expansion', () => {
  it('fans out over upstream variants, joins on shared keys, and gathers per remaining key', async () => {
    const p = new TempProject({
      'pipelines/x.yaml': `pipeline: x
params: { epochs: 3 }
stages:
  data: { uses: ./stages/emit.ts, matrix: { ds: [1, 2] }, with: { value: "\${matrix.ds}" } }
  train:
    uses: ./stages/emit.ts
    in: {}
    matrix: { beta: [1, 4] }
    with: { value: "\${matrix.beta}", factor: "\${params.epochs}" }
  eval:
    uses: shell
    in: { data: data, model: train }
    with: { cmd: "echo \${matrix.ds}-\${matrix.beta}" }
  per_ds:
    uses: shell
    in: { runs: "eval[*]", data: data }
    with: { cmd: "true" }
  all: { uses: ./stages/sum.ts, in: { runs: "train[*]" } }
`,
    });
    const plan = await p.plan('pipelines/x.yaml');
    assert.deepEqual(
      plan.instances.map((i) => i.id),
      [
        'data[ds=1]',
        'data[ds=2]',
        'train[beta=1]',
        'train[beta=4]',
        'eval[ds=1,beta=1]',
        'eval[ds=1,beta=4]',
        'eval[ds=2,beta=1]',
        'eval[ds=2,beta=4]',
        'per_ds[ds=1]',
        'per_ds[ds=2]',
        'all',
      ],
    );
    const eval14 = plan.byId.get('eval[ds=1,beta=4]')!;
    assert.equal(eval14.params.cmd, 'echo ${ABLATE_MATRIX_ds}-${ABLATE_MATRIX_beta}');
    assert.deepEqual(eval14.params.vars, { ABLATE_MATRIX_ds: '1', ABLATE_MATRIX_beta: '4' });
    assert.deepEqual(eval14.inputs, { data: { type: 'single', from: 'data[ds=1]' }, model: { type: 'single', from: 'train[beta=4]' } });
    assert.equal(eval14.artifactDir, 'artifacts/x/eval/ds=1,beta=4');
    const perDs2 = plan.byId.get('per_ds[ds=2]')!;
    const runs = perDs2.inputs.runs!;
    assert.equal(runs.type, 'gather');
    assert.deepEqual(runs.type === 'gather' ? runs.from.map((f) => f.id) : [], ['eval[ds=2,beta=1]', 'eval[ds=2,beta=4]']);
    assert.deepEqual(plan.graph.get('all'), ['train[beta=1]', 'train[beta=4]']);
    // Interpolation keeps types; schema defaults are filled in.
    assert.deepEqual(plan.byId.get('train[beta=4]')!.params, { value: 4, factor: 3 });
    assert.deepEqual(plan.byId.get('data[ds=2]')!.params, { value: 2, factor: 1 });
  });

  it('stage[key=value] binds only the matching variants, and the selected key is not inherited', async () => {
    const p = new TempProject({
      'pipelines/sel.yaml': `pipeline: sel
stages:
  train: { uses: ./stages/emit.ts, matrix: { model: [conv, ae], d: [2, 16] }, with: { value: 1 } }
  samples: { uses: ./stages/parity.ts, in: { value: "train[model=conv]" } }
  one: { uses: ./stages/parity.ts, in: { value: "train[model=ae,d=16].value" } }
`,
    });
    const plan = await p.plan('pipelines/sel.yaml');
    assert.deepEqual(
      plan.instances.filter((i) => i.stage !== 'train').map((i) => i.id),
      ['samples[d=2]', 'samples[d=16]', 'one'],
    );
    assert.deepEqual(plan.byId.get('samples[d=16]')!.inputs.value, { type: 'single', from: 'train[model=conv,d=16]' });
    assert.deepEqual(plan.byId.get('one')!.inputs.value, { type: 'single', from: 'train[model=ae,d=16]', output: 'value' });
  });

  it('--set values are read as YAML scalars', async () => {
    const p = new TempProject({
      'pipelines/s.yaml':
        'pipeline: s\nparams: { n: 1, name: a, flag: false }\nstages:\n  a: { uses: shell, with: { cmd: "${params.n} ${params.name} ${params.flag}" } }\n',
    });
    const plan = await p.plan('pipelines/s.yaml', ['n=2.5', 'name=b c', 'flag=true']);
    assert.deepEqual(plan.params, { n: 2.5, name: 'b c', flag: true });
    assert.equal(plan.byId.get('a')!.params.cmd, '${ABLATE_PARAM_n} ${ABLATE_PARAM_name} ${ABLATE_PARAM_flag}');
    assert.deepEqual(plan.byId.get('a')!.params.vars, { ABLATE_PARAM_n: '2.5', ABLATE_PARAM_name: 'b c', ABLATE_PARAM_flag: 'true' });
  });

  it('a matrix over several keys is their cartesian product, in declaration order', async () => {
    const p = new TempProject({
      'pipelines/m.yaml':
        'pipeline: m\nstages:\n  t:\n    uses: shell\n    matrix: { d: [2, 16], beta: [0.5, 1], opt: [adam] }\n    with: { cmd: "true" }\n',
    });
    const plan = await p.plan('pipelines/m.yaml');
    assert.deepEqual(
      plan.instances.map((i) => i.id),
      ['t[d=2,beta=0.5,opt=adam]', 't[d=2,beta=1,opt=adam]', 't[d=16,beta=0.5,opt=adam]', 't[d=16,beta=1,opt=adam]'],
    );
  });
});

describe('plan cache', () => {
  const comparable = (plan: Plan) => ({
    name: plan.name,
    params: plan.params,
    replicates: plan.replicates,
    stageNames: plan.stageNames,
    graph: [...plan.graph],
    // Through JSON, as stored: an absent key and an undefined one are the same plan.
    instances: JSON.parse(JSON.stringify(plan.instances.map(({ kind: _kind, ...rest }) => rest))) as unknown,
    kinds: plan.instances.map((i) => i.kind),
  });

  it('a recalled plan equals the one built from the file, for every pipeline in pipelines/', async () => {
    const files = readdirSync(join(repoRoot, 'pipelines')).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 8);
    const dir = mkdtempSync(join(tmpdir(), 'ablate-plan-cache-'));
    try {
      for (const file of files) {
        const path = join(repoRoot, 'pipelines', file);
        const cache = new ParseCache(dir, true);
        const built = await loadPipeline(path);
        const first = await loadPipeline(path, { parseCache: cache });
        const recalled = await loadPipeline(path, { parseCache: cache });
        assert.deepEqual(comparable(first), comparable(built), file);
        assert.deepEqual(comparable(recalled), comparable(built), file);
        assert.equal(recalled.source.text, built.source.text);
      }
      // Each pipeline: its parsed text and its plan.
      assert.equal(readdirSync(dir).length, files.length * 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a hit skips expansion; the key holds the text, the --set values and the instance limit', async () => {
    const p = new TempProject({
      'pipelines/c.yaml':
        'pipeline: c\nparams: { n: 1 }\nstages:\n  a: { uses: shell, matrix: { i: [1, 2] }, with: { cmd: "echo ${params.n}" } }\n',
    });
    const cache = new ParseCache(p.path('.ablate/parsed'), true);
    const file = p.path('pipelines/c.yaml');
    await loadPipeline(file, { parseCache: cache });
    const planFile = readdirSync(p.path('.ablate/parsed'))
      .map((name) => p.path(`.ablate/parsed/${name}`))
      .find((path) => readFileSync(path, 'utf8').includes('"instances"'))!;
    // An entry edited by hand shows whether a load read it instead of expanding.
    writeFileSync(planFile, readFileSync(planFile, 'utf8').replace('"ABLATE_PARAM_n":"1"', '"ABLATE_PARAM_n":"recalled"'));
    assert.deepEqual((await loadPipeline(file, { parseCache: cache })).instances[0]!.params.vars, { ABLATE_PARAM_n: 'recalled' });
    assert.deepEqual((await loadPipeline(file, { parseCache: cache, overrides: ['n=7'] })).instances[0]!.params.vars, {
      ABLATE_PARAM_n: '7',
    });
    p.write('pipelines/c.yaml', p.read('pipelines/c.yaml') + '# a comment\n');
    assert.deepEqual((await loadPipeline(file, { parseCache: cache })).instances[0]!.params.vars, { ABLATE_PARAM_n: '1' });
    await assert.rejects(loadPipeline(file, { parseCache: cache, maxInstances: 1 }), /would expand to 2 instances/);
  });

  it('an invalid pipeline leaves no entry', async () => {
    const p = new TempProject({
      'pipelines/bad.yaml': 'pipeline: bad\nstages:\n  a: { uses: shell, with: { cmd: 3 } }\n',
    });
    await assert.rejects(loadPipeline(p.path('pipelines/bad.yaml'), { parseCache: new ParseCache(p.path('.ablate/parsed'), true) }));
    assert.ok(!existsSync(p.path('.ablate/parsed')) || readdirSync(p.path('.ablate/parsed')).length === 0);
  });

  it('an edit to a stage module it uses is a miss: a new schema default reaches the plan', () => {
    const p = new TempProject({ 'pipelines/m.yaml': 'pipeline: m\nstages:\n  e: { uses: ./stages/emit.ts, with: { value: 3 } }\n' });
    assert.equal(p.cli(['run', 'pipelines/m.yaml']).status, 0);
    assert.match(p.cli(['status', 'pipelines/m.yaml']).stdout, /up to date/);
    p.write(
      'pipelines/stages/emit.ts',
      p.read('pipelines/stages/emit.ts').replace("factor: { type: 'number', default: 1 }", "factor: { type: 'number', default: 2 }"),
    );
    const status = p.cli(['status', 'pipelines/m.yaml']);
    assert.match(status.stdout, /param factor 1 → 2/);
    assert.match(p.cli(['run', 'pipelines/m.yaml']).stdout, /1 ran/);
  });
});
