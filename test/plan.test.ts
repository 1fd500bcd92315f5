import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TempProject } from './helpers.js';

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
