import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { LocalProcessPool } from '../src/runner/executor/local-pool.js';
import { readLockfile } from '../src/runner/lockfile.js';
import { runPlan } from '../src/runner/scheduler.js';
import { pipelineStatus } from '../src/runner/status.js';
import { workspaceAt } from '../src/runner/workspace.js';
import { ids, TempProject } from './helpers.js';
import { isRunning, waitFor } from './processes.js';

const PIPELINE = `pipeline: t
params: { base: 2 }
stages:
  a: { uses: ./stages/emit.ts, with: { value: "\${params.base}" } }
  p: { uses: ./stages/parity.ts, in: { value: a } }
  r:
    uses: shell
    in: { x: p }
    with: { cmd: 'cp $ABLATE_IN_X/parity.txt $ABLATE_OUT/r.txt', outs: [r.txt] }
  b:
    uses: ./stages/emit.ts
    matrix: { v: [1, 2] }
    with: { value: "\${matrix.v}", factor: 10 }
  q: { uses: ./stages/parity.ts, in: { value: b } }
  s: { uses: ./stages/sum.ts, in: { runs: "b[*]" } }
`;
const FILE = 'pipelines/t.yaml';
const ALL = ['a', 'b[v=1]', 'b[v=2]', 'p', 'q[v=1]', 'q[v=2]', 'r', 's'];

describe('incremental runs', () => {
  it('runs everything once, then a rerun executes nothing', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    const first = await project.run(FILE);
    assert.deepEqual([...first.ran].sort(), ALL);
    assert.deepEqual(first.failed, []);
    const sum = JSON.parse(project.read('artifacts/t/s/sum.json')) as { sum: number; ids: string[] };
    assert.equal(sum.sum, 30);
    assert.deepEqual(sum.ids, ['b[v=1]', 'b[v=2]']);
    assert.equal(project.read('artifacts/t/q/v=2/parity.txt'), 'even\n');

    const second = await project.run(FILE);
    assert.deepEqual(second.ran, []);
    assert.deepEqual(ids(second.events, 'start'), []);
    assert.deepEqual([...second.upToDate].sort(), ALL);
  });

  it('a one-param edit reruns that stage and its descendants, nothing else', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    await project.run(FILE);
    const edited = await project.run(FILE, { overrides: ['base=3'] });
    // a's value changes, so p reruns and its output changes (even → odd), so r reruns.
    assert.deepEqual([...edited.ran].sort(), ['a', 'p', 'r']);
    const status = await pipelineStatus(await project.plan(FILE, ['base=3']), workspaceAt(project.root));
    assert.ok(status.every((s) => s.state === 'up-to-date'));
  });

  it('adding a matrix value runs only the new variant and the gathers', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    await project.run(FILE);
    project.write(FILE, PIPELINE.replace('v: [1, 2]', 'v: [1, 2, 3]'));
    const grown = await project.run(FILE);
    assert.deepEqual([...grown.ran].sort(), ['b[v=3]', 'q[v=3]', 's']);
    assert.equal((JSON.parse(project.read('artifacts/t/s/sum.json')) as { sum: number }).sum, 60);
  });

  it('early cutoff: identical outputs from a rerun leave descendants cached', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    await project.run(FILE);
    // base 2 → 4: a and p rerun, but p still writes "even", so r's input digest is unchanged.
    const result = await project.run(FILE, { overrides: ['base=4'] });
    assert.deepEqual([...result.ran].sort(), ['a', 'p']);
    assert.ok(result.upToDate.includes('r'));
  });

  it('--force reruns a stage; deterministic output keeps its descendants cached', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    await project.run(FILE);
    const before = project.read('artifacts/t/a/value.json');
    const forced = await project.run(FILE, { force: ['a'] });
    assert.deepEqual(forced.ran, ['a']);
    assert.equal(project.read('artifacts/t/a/value.json'), before, 'same seed, same bytes');
    const all = await project.run(FILE, { force: true, targets: ['s'] });
    assert.deepEqual([...all.ran].sort(), ['b[v=1]', 'b[v=2]', 's']);
  });

  it('targets run with their ancestors only', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    const result = await project.run(FILE, { targets: ['p'] });
    assert.deepEqual([...result.ran].sort(), ['a', 'p']);
    const variant = await project.run(FILE, { targets: ['q[v=2]'] });
    assert.deepEqual([...variant.ran].sort(), ['b[v=2]', 'q[v=2]']);
  });

  it('restores deleted or edited artifacts from the cache without running anything', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    await project.run(FILE);
    rmSync(project.path('artifacts'), { recursive: true });
    const restored = await project.run(FILE);
    assert.deepEqual(restored.ran, []);
    assert.deepEqual([...restored.restored].sort(), ALL);
    writeFileSync(project.path('artifacts/t/a/value.json'), '{"value": 99}');
    const again = await project.run(FILE);
    assert.deepEqual(again.restored, ['a']);
    assert.match(project.read('artifacts/t/a/value.json'), /"value":2/);
  });

  it('seeds: each instance gets a stable seed; an explicit seed param is used as is', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    await project.run(FILE);
    const draws = (p: string) => (JSON.parse(project.read(p)) as { draws: number[] }).draws;
    assert.notDeepEqual(draws('artifacts/t/b/v=1/value.json'), draws('artifacts/t/b/v=2/value.json'));
    project.write(
      'pipelines/seeded.yaml',
      'pipeline: seeded\nstages:\n  x: { uses: ./stages/emit.ts, with: { value: 1, seed: 7 } }\n  y: { uses: ./stages/emit.ts, with: { value: 2, seed: 7 } }\n',
    );
    await project.run('pipelines/seeded.yaml');
    assert.deepEqual(draws('artifacts/seeded/x/value.json'), draws('artifacts/seeded/y/value.json'));
  });

  it('records fingerprints, outputs and metrics in the lockfile', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    await project.run(FILE);
    const lock = readLockfile(project.path('pipelines/t.lock.json'))!;
    assert.deepEqual(Object.keys(lock.stages).sort(), ALL);
    const s = lock.stages.s!;
    assert.equal(s.metrics?.sum, 30);
    assert.equal(s.artifactDir, 'artifacts/t/s');
    assert.ok(s.outputs['sum.json']!.digest.match(/^[0-9a-f]{64}$/));
    assert.equal(lock.stages['b[v=2]']!.fingerprint.params.value, 2);
    assert.deepEqual(Object.keys(lock.stages.a!.fingerprint.code.files).sort(), ['stages/emit.ts', 'stages/helper.ts']);
  });
});

describe('user stage modules', () => {
  it('a plain JavaScript module works like a TypeScript one', async () => {
    const project = new TempProject({
      'pipelines/js/upper.mjs': `import { readFileSync, writeFileSync } from 'node:fs';
export default {
  name: 'upper', description: 'upper-cases a file',
  params: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'], additionalProperties: false },
  inputs: {},
  outputs: () => ({ out: 'out.txt' }),
  async run(ctx) { writeFileSync(ctx.outDir + '/out.txt', ctx.params.text.toUpperCase()); },
};
`,
      'pipelines/j.yaml': 'pipeline: j\nstages:\n  u: { uses: ./js/upper.mjs, with: { text: hello } }\n',
    });
    const result = await project.run('pipelines/j.yaml');
    assert.deepEqual(result.ran, ['u']);
    assert.equal(project.read('artifacts/j/u/out.txt'), 'HELLO');
  });

  it("a stage's log lines reach the display as they come, in order among its progress, and stay in its log", async () => {
    const project = new TempProject({
      'pipelines/js/epochs.mjs': `import { writeFileSync } from 'node:fs';
export default {
  name: 'epochs', description: 'logs one line per epoch',
  params: { type: 'object', properties: {}, additionalProperties: false },
  inputs: {},
  outputs: () => ({ out: 'out.txt' }),
  async run(ctx) {
    for (let e = 1; e <= 3; e++) { ctx.progress('epoch ' + e + '/3', e / 3); ctx.log('epoch ' + e + ': val ' + (10 - e)); }
    writeFileSync(ctx.outDir + '/out.txt', 'ok');
  },
};
`,
      'pipelines/e.yaml': 'pipeline: e\nstages:\n  fit: { uses: ./js/epochs.mjs }\n',
    });
    const result = await project.run('pipelines/e.yaml');
    const seen = result.events.flatMap((e) =>
      e.type === 'plan'
        ? []
        : e.type === 'log'
          ? [`log ${e.line}`]
          : e.type === 'progress'
            ? [`progress ${e.message.split(' · ')[0]}`]
            : [e.type],
    );
    assert.deepEqual(seen.slice(seen.indexOf('start')), [
      'start',
      'progress epoch 1/3',
      'log epoch 1: val 9',
      'progress epoch 2/3',
      'log epoch 2: val 8',
      'progress epoch 3/3',
      'log epoch 3: val 7',
      'done',
    ]);
    assert.match(project.read('.ablate/logs/e/fit.log'), /\[progress\] epoch 1\/3\nepoch 1: val 9\n/);
  });
});

/** This process's worker processes: children (by /proc) whose command line is the pool's entry. */
function poolWorkers(): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const parent = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
        return parent === process.pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('worker-main');
      } catch {
        return false; // it ended while we looked
      }
    })
    .map(Number);
}

describe('local worker pool', () => {
  it('runs the first job in the worker prewarm() started, and close() ends one that never got a job', async () => {
    const project = new TempProject({
      'pipelines/w.yaml':
        "pipeline: w\nstages:\n  a: { uses: shell, with: { cmd: 'echo $PPID > $ABLATE_OUT/ppid.txt', outs: [ppid.txt] } }\n",
    });
    const pool = new LocalProcessPool(2);
    pool.prewarm();
    const warm = poolWorkers();
    assert.equal(warm.length, 1, 'prewarm starts one worker');
    try {
      const summary = await runPlan(await project.plan('pipelines/w.yaml'), workspaceAt(project.root), pool, {
        event: () => undefined,
        close: async () => undefined,
      });
      assert.deepEqual(summary.ran, ['a']);
      assert.equal(Number(project.read('artifacts/w/a/ppid.txt')), warm[0], "the stage's shell is the prewarmed worker's child");
      assert.deepEqual(poolWorkers(), warm, 'no second worker for one job');
    } finally {
      await pool.close();
    }
    await waitFor(() => !isRunning(warm[0]!));

    const unused = new LocalProcessPool(1);
    unused.prewarm();
    const [idle] = poolWorkers();
    await unused.close();
    assert.ok(idle !== undefined && !isRunning(idle), 'closed with the pool, though it never ran a job');
  });
});

describe('shell stages', () => {
  it(
    "write stdout and stderr into the stage's log, and end when the command does, even if it left a process holding them",
    { timeout: 120_000 },
    async () => {
      const project = new TempProject({
        'pipelines/sh.yaml': `pipeline: sh
stages:
  bg:
    uses: shell
    with:
      cmd: 'sleep 600 & echo $! > $ABLATE_OUT/pid.txt; echo to-stdout; echo to-stderr >&2'
      outs: [pid.txt]
`,
      });
      const result = await project.run('pipelines/sh.yaml');
      const pid = Number(project.read('artifacts/sh/bg/pid.txt').trim());
      try {
        assert.deepEqual(result.ran, ['bg'], 'done while its background sleep still holds the log open');
        assert.ok(isRunning(pid));
        const log = project.read('.ablate/logs/sh/bg.log');
        assert.match(log, /^# bg · /);
        assert.match(log, /to-stdout\nto-stderr\n/);
      } finally {
        process.kill(pid, 'SIGKILL');
      }
    },
  );
});

describe('why a stage is stale', () => {
  it('names the changed param, code file, input and dependency file', async () => {
    const pipeline =
      PIPELINE + `  d:\n    uses: shell\n    with: { cmd: 'cp data.txt $ABLATE_OUT/d.txt', deps: [data.txt], outs: [d.txt] }\n`;
    const project = new TempProject({ [FILE]: pipeline, 'pipelines/data.txt': 'one\n' });
    await project.run(FILE);
    project.write('pipelines/data.txt', 'two\n');
    project.write('pipelines/stages/helper.ts', project.read('pipelines/stages/helper.ts') + '// edited\n');
    const status = await pipelineStatus(await project.plan(FILE, ['base=5']), workspaceAt(project.root));
    const why = Object.fromEntries(status.map((s) => [s.id, s.explanation.join('; ')]));
    assert.equal(why.a, './stages/emit.ts code changed: stages/helper.ts modified; param value 2 → 5');
    assert.equal(why['b[v=1]'], './stages/emit.ts code changed: stages/helper.ts modified');
    assert.equal(why.p, 'waits for a, which will run');
    assert.equal(why.d, 'dep data.txt changed');
    assert.equal(status.find((s) => s.id === 's')!.state, 'stale');

    const run = await project.run(FILE, { overrides: ['base=5'] });
    const starts = Object.fromEntries(run.events.flatMap((e) => (e.type === 'start' ? [[e.id, e.reasons.join('; ')]] : [])));
    assert.equal(starts.d, 'dep data.txt changed');
    assert.equal(starts.p, 'input value changed');
    assert.equal(project.read('artifacts/t/d/d.txt'), 'two\n');
  });
});

describe('failures', () => {
  const FAILING = `pipeline: f
stages:
  ok: { uses: ./stages/sleep.ts, with: { ms: 10 } }
  bad: { uses: ./stages/sleep.ts, with: { ms: 10, fail: true } }
  after: { uses: shell, in: { x: bad }, with: { cmd: 'true' } }
  missing: { uses: shell, with: { cmd: 'echo > $ABLATE_OUT/other.txt', outs: [wanted.txt] } }
`;

  it('a failing stage leaves no cache entry, no artifact, no lock entry; dependents are skipped', async () => {
    const project = new TempProject({ 'pipelines/f.yaml': FAILING });
    const result = await project.run('pipelines/f.yaml', { keepGoing: true });
    assert.deepEqual([...result.failed].sort(), ['bad', 'missing']);
    assert.deepEqual(result.skipped, ['after']);
    assert.deepEqual(result.ran, ['ok']);
    const failed = result.events.find((e) => e.type === 'failed' && e.id === 'bad');
    assert.ok(failed?.type === 'failed');
    assert.match(failed.message, /sleep stage failed on purpose/);
    assert.match(failed.logTail, /about to finish/);
    assert.ok(existsSync(failed.logFile));
    const missing = result.events.find((e) => e.type === 'failed' && e.id === 'missing');
    assert.match(missing?.type === 'failed' ? missing.message : '', /declared output 'wanted.txt' \(wanted.txt\) was not written/);
    assert.ok(!existsSync(project.path('artifacts/f/bad')));
    const lock = readLockfile(project.path('pipelines/f.lock.json'))!;
    assert.deepEqual(Object.keys(lock.stages), ['ok']);
    assert.deepEqual(readdirSync(project.path('.ablate/tmp')), [], 'temp outputs are cleaned up');
    const runs = readdirSync(project.path('.ablate/cache/runs')).flatMap((d) => readdirSync(project.path(`.ablate/cache/runs/${d}`)));
    assert.equal(runs.length, 1, 'only the successful stage is cached');
  });

  it('without --keep-going, nothing new starts after a failure', async () => {
    const project = new TempProject({
      'pipelines/f.yaml':
        'pipeline: f\nstages:\n  bad: { uses: ./stages/sleep.ts, with: { ms: 10, fail: true } }\n  slow: { uses: ./stages/sleep.ts, in: {}, with: { ms: 10 } }\n  later: { uses: shell, in: { x: slow }, with: { cmd: "true" } }\n',
    });
    const result = await project.run('pipelines/f.yaml', { jobs: 1 });
    assert.deepEqual(result.failed, ['bad']);
    assert.ok(result.skipped.includes('later'));
  });

  it('a corrupted cache object is detected on restore and the stage reruns', async () => {
    const project = new TempProject({ [FILE]: PIPELINE });
    await project.run(FILE);
    const lock = readLockfile(project.path('pipelines/t.lock.json'))!;
    const digest = lock.stages.a!.outputs['value.json']!.digest;
    const object = project.path(`.ablate/cache/objects/${digest.slice(0, 2)}/${digest.slice(2)}`);
    rmSync(object);
    writeFileSync(object, 'garbage');
    rmSync(project.path('artifacts/t/a'), { recursive: true });
    const result = await project.run(FILE);
    assert.deepEqual(result.ran, ['a']);
    assert.equal(readFileSync(project.path('artifacts/t/a/value.json'), 'utf8').includes('"value":2'), true);
  });
});

describe('threads of multithreaded stages', () => {
  const threadsOf = (project: TempProject, dir: string) =>
    (JSON.parse(project.read(`artifacts/t/${dir}/threads.json`)) as { threads: number }).threads;

  it('two one-thread trainings ready at once run side by side on two slots', async () => {
    const project = new TempProject();
    const meet = project.path('meet');
    project.write(
      'pipelines/t.yaml',
      `pipeline: t
stages:
  data: { uses: ./stages/emit.ts, with: { value: 1 } }
  train: { uses: ./stages/busy.ts, matrix: { m: [conv, ae] }, in: { data: data }, with: { tag: "\${matrix.m}", meet: ${JSON.stringify(meet)}, expect: [conv, ae] } }
`,
    );
    const summary = await project.run('pipelines/t.yaml', { jobs: 2 });
    assert.deepEqual(summary.failed, [], 'each training waited for the other to start: they ran at the same time');
    assert.deepEqual([threadsOf(project, 'train/m=conv'), threadsOf(project, 'train/m=ae')], [1, 1]);
  });

  it('a stage gets the threads its params ask for, whatever -j is, and the same bytes under -j1 and -j2', async () => {
    const pipeline = `pipeline: t
stages:
  wide: { uses: ./stages/busy.ts, with: { threads: 2 } }
  narrow: { uses: ./stages/busy.ts, with: { threads: 1, tag: n } }
`;
    const digests = [];
    for (const jobs of [1, 2]) {
      const project = new TempProject({ 'pipelines/t.yaml': pipeline });
      assert.deepEqual((await project.run('pipelines/t.yaml', { jobs })).failed, []);
      assert.equal(threadsOf(project, 'wide'), 2);
      assert.equal(threadsOf(project, 'narrow'), 1);
      const lock = readLockfile(project.path('pipelines/t.lock.json'))!;
      digests.push(Object.fromEntries(Object.entries(lock.stages).map(([id, e]) => [id, [e.digest, e.outputDigest]])));
    }
    assert.deepEqual(digests[0], digests[1]);
  });

  it('the thread count is part of the fingerprint', async () => {
    const project = new TempProject({
      'pipelines/t.yaml': 'pipeline: t\nstages:\n  wide: { uses: ./stages/busy.ts, with: { threads: 1 } }\n',
    });
    await project.run('pipelines/t.yaml');
    project.write('pipelines/t.yaml', 'pipeline: t\nstages:\n  wide: { uses: ./stages/busy.ts, with: { threads: 2 } }\n');
    const [status] = await pipelineStatus(await project.plan('pipelines/t.yaml'), workspaceAt(project.root));
    assert.deepEqual(status!.explanation, ['param threads 1 → 2']);
  });
});
