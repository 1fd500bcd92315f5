import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { cliPath, TempProject } from './helpers.js';
import { exited, waitFor } from './processes.js';

const PIPELINE = `pipeline: demo
params: { n: 3 }
stages:
  gen:
    uses: shell
    with: { cmd: 'seq \${params.n} > $ABLATE_OUT/nums.txt', outs: [nums.txt] }
  square:
    uses: shell
    in: { nums: gen.nums.txt }
    matrix: { power: [2, 3] }
    with:
      cmd: 'awk "{ s += \\$1 ^ \${matrix.power} } END { print \\"{\\\\\\"sum\\\\\\": \\" s \\"}\\" }" $ABLATE_IN_NUMS > $ABLATE_OUT/metrics.json'
      outs: [metrics.json]
      metrics: metrics.json
  report:
    uses: shell
    in: { parts: "square[*]" }
    with: { cmd: 'for d in $ABLATE_IN_PARTS; do cat $d/metrics.json; done > $ABLATE_OUT/all.txt', outs: [all.txt] }
`;

describe('the ablate CLI', () => {
  it('run, no-op rerun, --set edit, status with reasons, dry run', () => {
    const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
    const first = p.cli(['run', 'pipelines/demo.yaml']);
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stdout, /✓ square\[power=3\]\s+done in .*sum=36/);
    assert.match(first.stdout, /demo: 4 ran, 0 up to date, 0 restored, 0 failed/);
    assert.equal(p.read('artifacts/demo/report/all.txt'), '{"sum": 14}\n{"sum": 36}\n');

    const again = p.cli(['run', 'pipelines/demo.yaml']);
    assert.match(again.stdout, /demo: 0 ran, 4 up to date, 0 restored, 0 failed/);

    const status = p.cli(['status', 'pipelines/demo.yaml', '--set', 'n=4']);
    assert.equal(status.status, 0);
    assert.match(status.stdout, /stale\s+gen\s+param vars \{"ABLATE_PARAM_n":"3"\} → \{"ABLATE_PARAM_n":"4"\}/);
    assert.match(status.stdout, /stale\s+square\[power=2\]\s+waits for gen, which will run/);

    const json = JSON.parse(p.cli(['status', 'pipelines/demo.yaml', '--json', '--set', 'n=4']).stdout) as {
      id: string;
      state: string;
      reasons: { type: string }[];
    }[];
    assert.deepEqual(
      json.map((s) => [s.id, s.state, s.reasons.map((r) => r.type).join()]),
      [
        ['gen', 'stale', 'param'],
        ['square[power=2]', 'stale', 'upstream'],
        ['square[power=3]', 'stale', 'upstream'],
        ['report', 'stale', 'upstream'],
      ],
    );

    const dry = p.cli(['run', 'pipelines/demo.yaml', '--dry-run', '--set', 'n=4']);
    assert.match(dry.stdout, /would run\s+gen/);
    assert.equal(p.cli(['run', 'pipelines/demo.yaml']).stdout.includes('0 ran'), true, 'the dry run changed nothing');

    const edited = p.cli(['run', 'pipelines/demo.yaml', '--set', 'n=4']);
    assert.match(edited.stdout, /demo: 4 ran/);
    assert.equal(p.read('artifacts/demo/report/all.txt'), '{"sum": 30}\n{"sum": 100}\n');
  });

  it('--force with and without a stage name', () => {
    const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
    p.cli(['run', 'pipelines/demo.yaml']);
    const one = p.cli(['run', 'pipelines/demo.yaml', '--force', 'gen']);
    assert.match(one.stdout, /▶ gen\s+running: forced/);
    assert.match(one.stdout, /demo: 1 ran, 3 up to date/, 'identical output: early cutoff keeps the rest');
    const all = p.cli(['run', '--force', 'pipelines/demo.yaml']);
    assert.match(all.stdout, /demo: 4 ran/);
  });

  it('dag in text, mermaid and dot', () => {
    const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
    const text = p.cli(['dag', 'pipelines/demo.yaml']).stdout;
    assert.equal(
      text,
      'gen\n├─ square[power=2]\n│  └─ report  (needs square[power=2], square[power=3])\n└─ square[power=3]\n   └─ ↑ report\n',
    );
    const mermaid = p.cli(['dag', 'pipelines/demo.yaml', '--format', 'mermaid']).stdout;
    assert.match(mermaid, /^graph TD\n  n0\["gen"\]/);
    assert.match(mermaid, /n1 --> n3/);
    const dot = p.cli(['dag', 'pipelines/demo.yaml', '--format', 'dot']).stdout;
    assert.match(dot, /"square\[power=3\]" -> "report";/);
    assert.equal(p.cli(['dag', 'pipelines/demo.yaml', '--format', 'svg']).status, 2);
  });

  it('verify catches a modified artifact; run restores it', () => {
    const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
    p.cli(['run', 'pipelines/demo.yaml']);
    assert.match(p.cli(['verify']).stdout, /verify: 4 files of 4 stages match/);
    p.write('artifacts/demo/gen/nums.txt', 'tampered\n');
    const bad = p.cli(['verify', 'pipelines/demo.yaml']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /gen: artifacts\/demo\/gen\/nums.txt modified/);
    assert.match(p.cli(['run', 'pipelines/demo.yaml']).stdout, /✓ gen\s+restored from cache/);
    assert.equal(p.cli(['verify']).status, 0);
  });

  it('verify says which mismatches the cache can restore, and a pipeline never run here in one line', () => {
    const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
    p.cli(['run', 'pipelines/demo.yaml']);
    rmSync(p.path('artifacts/demo/gen'), { recursive: true });
    const restorable = p.cli(['verify']);
    assert.equal(restorable.status, 1);
    assert.match(restorable.stderr, /gen: artifacts\/demo\/gen\/nums.txt missing\n/);
    assert.match(
      restorable.stderr,
      /verify: 1 of 4 artifact files do not match \(pipelines\/demo.lock.json\); `ablate run` restores them from the cache/,
    );

    rmSync(p.path('.ablate'), { recursive: true });
    rmSync(p.path('artifacts'), { recursive: true });
    const fresh = p.cli(['verify']);
    assert.equal(fresh.status, 1);
    assert.equal(
      fresh.stderr.split('\n')[0],
      'pipelines/demo.lock.json: none of its 4 artifact files are here, nor in the cache (not run in this workspace)',
    );
    assert.match(
      fresh.stderr,
      /verify: 4 of 4 artifact files do not match \(pipelines\/demo.lock.json\); `ablate run` runs their stages again/,
    );
  });

  it('gc drops cache entries neither the lockfile nor the last N runs reference', () => {
    const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
    p.cli(['run', 'pipelines/demo.yaml']);
    // A no-op rerun: the stat cache remembers each record it checked, records gc removes below.
    assert.match(p.cli(['run', 'pipelines/demo.yaml']).stdout, /0 ran, 4 up to date/);
    p.cli(['run', 'pipelines/demo.yaml', '--set', 'n=5']);
    const runsBefore = countRuns(p);
    assert.equal(runsBefore, 8);
    assert.match(p.cli(['gc', '--dry-run']).stdout, /kept 8 cache entries .* the last 10 runs of each pipeline; would remove 0 entries/);
    const dry = p.cli(['gc', '--dry-run', '--keep-runs', '1']);
    assert.match(dry.stdout, /kept 4 cache entries referenced by 1 lockfiles and the last 1 runs of each pipeline; would remove 4 entries/);
    assert.equal(countRuns(p), 8);
    const gc = p.cli(['gc', '--keep-runs', '0']);
    assert.match(
      gc.stdout,
      /removed 4 entries, \d+ objects \([\d.]+ MB\), 0 temp dirs, 3 parsed pipelines and plans, 4 stat-cache entries/,
    );
    assert.deepEqual(readdirSync(p.path('.ablate/parsed')), []);
    const statCache = JSON.parse(p.read('.ablate/stat-cache.json')) as { entries: object; records: object };
    const gone = [...Object.keys(statCache.entries), ...Object.keys(statCache.records)].filter((path) => !existsSync(path));
    assert.deepEqual(gone, [], 'the stat cache names no file gc removed');
    assert.equal(countRuns(p), 4);
    assert.match(p.cli(['run', 'pipelines/demo.yaml', '--set', 'n=5']).stdout, /0 ran, 4 up to date/);
    assert.match(p.cli(['run', 'pipelines/demo.yaml']).stdout, /4 ran/, 'the collected n=3 results are gone');
  });

  it('gc keeps the last --keep-history entries of each run history, which log lists', () => {
    const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
    for (const n of [3, 4, 5]) p.cli(['run', 'pipelines/demo.yaml', '--set', `n=${n}`]);
    const runsListed = () =>
      p
        .cli(['log', 'pipelines/demo.yaml'])
        .stdout.split('\n')
        .filter((l) => /^\d{4}-\d\d-\d\d /.test(l)).length;
    assert.equal(runsListed(), 3);
    const bad = p.cli(['gc', '--keep-history', '1', '--keep-runs', '2']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--keep-history 1 is below --keep-runs 2/);
    assert.match(p.cli(['gc', '--keep-history', '2']).stderr, /--keep-history 2 is below --keep-runs 10/, 'the default --keep-runs counts');
    assert.match(p.cli(['gc', '--dry-run', '--keep-history', '2', '--keep-runs', '2']).stdout, /1 history entries beyond the last 2\n/);
    assert.equal(runsListed(), 3, 'a dry run trims nothing');
    assert.match(p.cli(['gc', '--keep-history', '2', '--keep-runs', '2']).stdout, /1 history entries beyond the last 2\n/);
    assert.equal(runsListed(), 2);
    assert.match(p.cli(['run', 'pipelines/demo.yaml', '--set', 'n=4']).stdout, /0 ran/, 'the runs kept are restorable');
  });

  it('gc refuses, in one line, while a run holds a stage, and nothing is removed', async () => {
    const p = new TempProject({
      'pipelines/s.yaml':
        'pipeline: s\nstages:\n  nap: { uses: ./stages/sleep.ts, with: { ms: 10, trace: trace, until: trace/release } }\n',
    });
    const run = p.spawnCli(['run', 'pipelines/s.yaml']);
    await waitFor(() => existsSync(p.path('pipelines/trace/started')));
    const gc = p.cli(['gc']);
    assert.equal(gc.status, 1);
    assert.equal(gc.stderr, `ablate gc: another ablate run or worker is active (pid ${run.pid}); run gc when it has finished\n`);
    assert.notDeepEqual(readdirSync(p.path('.ablate/tmp')), [], 'the running stage keeps its directory');
    writeFileSync(p.path('pipelines/trace/release'), '');
    assert.equal(await exited(run), 0);
  });

  it('a failing stage: exit 1, the log tail shown', () => {
    const p = new TempProject({
      'pipelines/f.yaml': 'pipeline: f\nstages:\n  boom: { uses: shell, with: { cmd: "echo something broke >&2; exit 3" } }\n',
    });
    const r = p.cli(['run', 'pipelines/f.yaml']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /✗ boom\s+failed: command exited with code 3/);
    assert.match(r.stdout, /\| something broke/);
    assert.match(r.stdout, /log: .*\.ablate\/logs\/f\/boom\.log/);
  });

  it(
    'on a terminal, the live listr2 display; in a pipe, one line per event',
    { skip: !existsSync('/usr/bin/script') && 'util-linux script is not installed' },
    () => {
      const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
      // script(1) gives the CLI a real pseudo-terminal (stdout.isTTY), sized like a terminal window.
      const env = { ...process.env };
      delete env.CI;
      const r = spawnSync(
        'script',
        ['-qec', `stty cols 120 rows 40; ${process.execPath} ${cliPath} run pipelines/demo.yaml`, '/dev/null'],
        { cwd: p.root, encoding: 'utf8', env },
      );
      assert.equal(r.status, 0, r.stdout);
      assert.match(r.stdout, /✔(\x1b\[\d+m)? square\[power=3\]\s+done in/, 'listr2 marks finished tasks with a green ✔');
      assert.match(r.stdout, /\x1b\[/, 'the display redraws with ANSI escapes');
      const plain = p.cli(['run', 'pipelines/demo.yaml', '--force']);
      assert.match(plain.stdout, /^▶ gen\s+running: forced$/m);
      assert.doesNotMatch(plain.stdout, /\x1b\[/);
    },
  );

  it('usage errors exit 2', () => {
    const p = new TempProject({ 'pipelines/demo.yaml': PIPELINE });
    assert.equal(p.cli(['frobnicate']).status, 2);
    assert.equal(p.cli(['run']).status, 2);
    assert.equal(p.cli(['run', 'pipelines/demo.yaml', '--jobs', 'x']).status, 2);
    const target = p.cli(['run', 'pipelines/demo.yaml', 'sqare']);
    assert.equal(target.status, 2);
    assert.match(target.stderr, /unknown stage 'sqare' in .*; did you mean 'square'\?/);
    assert.equal(p.cli(['--help']).status, 0);
    const missing = p.cli(['validate', 'pipelines/nope.yaml']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /cannot read pipeline file/);
    assert.match(p.cli(['validate', 'pipelines/demo.yaml']).stdout, /ok \(3 stages, 4 instances\)/);
  });
});

function countRuns(p: TempProject): number {
  const dir = p.path('.ablate/cache/runs');
  return readdirSync(dir).flatMap((d) => readdirSync(`${dir}/${d}`)).length;
}
