// Every error a user can cause: one line naming the file and what to do, exit 2 for bad input,
// no stack trace, nothing written (issue 13).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { idx, TempProject } from './helpers.js';

const PIPELINE = 'pipeline: f\nparams: { x: 1 }\nstages:\n  a: { uses: ./stages/emit.ts, with: { value: "${params.x}" } }\n';

/** Every file under the project but the fixtures: what a failed command must leave as it was. */
function snapshot(p: TempProject): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    for (const e of readdirSync(p.path(rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path);
      else if (!path.startsWith('pipelines/stages/')) out[path] = readFileSync(p.path(path), 'utf8');
    }
  };
  walk('');
  return out;
}

function expectUsageError(p: TempProject, args: string[], message: RegExp): void {
  const before = snapshot(p);
  const r = p.cli(args);
  assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
  assert.deepEqual(snapshot(p), before, 'nothing was written');
}

describe('errors a user can cause', () => {
  it('a corrupt lockfile: run, status, verify and gc name it and say what to do', () => {
    const p = new TempProject({ 'pipelines/f.yaml': PIPELINE });
    assert.equal(p.cli(['run', 'pipelines/f.yaml']).status, 0);
    writeFileSync(p.path('pipelines/f.lock.json'), '{"version": 1, "stages": {');
    for (const args of [['run', 'pipelines/f.yaml'], ['status', 'pipelines/f.yaml'], ['verify'], ['gc']]) {
      expectUsageError(
        p,
        args,
        /: pipelines\/f\.lock\.json is not valid JSON .*restore it \(git checkout -- pipelines\/f\.lock\.json\) or delete it/,
      );
    }
  });

  it('--set values that are not YAML scalars', () => {
    const p = new TempProject({ 'pipelines/f.yaml': PIPELINE });
    expectUsageError(
      p,
      ['run', 'pipelines/f.yaml', '--set', 'x=*a'],
      /--set x=\*a: the value is not valid YAML .*quote it to pass a string/,
    );
    expectUsageError(p, ['run', 'pipelines/f.yaml', '--set', 'x=[a'], /--set x=\[a: the value is not valid YAML/);
  });

  it('aliases that expand past the limit (a "billion laughs" file)', () => {
    const laughs = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      ...'bcdefgh'.split('').map((c, i) => `${c}: &${c} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`),
    ];
    const p = new TempProject({
      'pipelines/b.yaml': `${laughs.join('\n')}\npipeline: b\nstages:\n  s: { uses: shell, with: { cmd: "true" } }\n`,
    });
    expectUsageError(p, ['validate', 'pipelines/b.yaml'], /pipelines\/b\.yaml:1:1: error: .*aliases expand past 1000 nodes/);
  });

  it('verify of a pipeline that does not exist is an error, not "0 files match"', () => {
    const p = new TempProject({ 'pipelines/f.yaml': PIPELINE });
    expectUsageError(p, ['verify', 'pipelines/nonexistent.yaml'], /no such pipeline or lockfile: pipelines\/nonexistent\.yaml/);
  });
});

describe('a CLI that behaves like the tools users know', () => {
  it('every command has --help (exit 0, its own usage); --version prints the version', () => {
    const p = new TempProject();
    for (const command of ['run', 'status', 'dag', 'validate', 'verify', 'gc', 'worker', 'doctor', 'completion']) {
      const r = p.cli([command, '--help']);
      assert.equal(r.status, 0, `${command}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: ablate ${command}\\b`), command);
      assert.ok(!existsSync(p.path('--help')), 'no file named --help was opened or made');
    }
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(p.cli(['--version']).stdout.trim(), pkg.version);
  });

  it('a misspelt command gets a suggestion and exit 2; completion scripts for bash and zsh that complete', () => {
    const p = new TempProject();
    const typo = p.cli(['statsu', 'pipelines/x.yaml']);
    assert.equal(typo.status, 2);
    assert.match(typo.stderr, /unknown command 'statsu'\n\(Did you mean status\?\)/);
    const bash = p.cli(['completion', 'bash']);
    assert.equal(bash.status, 0);
    assert.match(p.cli(['completion', 'zsh']).stdout, /^autoload -U \+X bashcompinit && bashcompinit$/m);
    // The function, run by bash as completion runs it: after `ablate run --ke` it offers --keep-going.
    writeFileSync(p.path('complete.sh'), bash.stdout);
    const complete = (words: string[]) =>
      spawnSync(
        'bash',
        [
          '-c',
          `source complete.sh; COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _ablate_complete; printf '%s\\n' "\${COMPREPLY[@]}"`,
        ],
        { cwd: p.root, encoding: 'utf8' },
      )
        .stdout.trim()
        .split('\n');
    assert.deepEqual(complete(['ablate', 'sta']), ['status']);
    assert.deepEqual(complete(['ablate', 'run', '--ke']), ['--keep-going']);
    assert.ok(complete(['ablate', 'verify', '--']).includes('--recompute'));
  });
});

describe('limits', () => {
  it('a matrix past 10,000 instances is refused at plan time, each axis sized', () => {
    const axis = (n: number) => `[${Array.from({ length: n }, (_, i) => i).join(', ')}]`;
    const p = new TempProject({
      'pipelines/m.yaml': `pipeline: m\nstages:\n  s:\n    uses: shell\n    matrix: { a: ${axis(100)}, b: ${axis(100)}, c: ${axis(100)} }\n    with: { cmd: "true" }\n`,
    });
    expectUsageError(
      p,
      ['validate', 'pipelines/m.yaml'],
      /pipelines\/m\.yaml:5:5: error: stage 's' would expand to 1,000,000 instances \(a 100 × b 100 × c 100\), over the limit of 10,000; shrink an axis, or set ABLATE_MAX_INSTANCES/,
    );
  });
});

describe('absurd values', () => {
  it('batch sizes and epoch counts beyond reason are refused at validation', () => {
    const p = new TempProject({
      'pipelines/x.yaml':
        'pipeline: x\nstages:\n  data: { uses: mnist }\n  prep: { uses: preprocess, in: { data: data } }\n  train: { uses: train-vae, in: { data: prep }, with: { batch_size: 1000000000000, epochs: 1e20 } }\n',
    });
    const before = snapshot(p);
    const r = p.cli(['validate', 'pipelines/x.yaml']);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /x\.yaml:5:69: error: expected a value at most 65536, got number 1000000000000 \(at stages\.train\.with\.batch_size\)/,
    );
    assert.match(
      r.stderr,
      /x\.yaml:5:92: error: expected a value at most 100000, got number 100000000000000000000 \(at stages\.train\.with\.epochs\)/,
    );
    assert.deepEqual(snapshot(p), before);
  });

  it('train and test images of different sizes: the message names both files', () => {
    const p = new TempProject({ 'pipelines/d.yaml': 'pipeline: d\nstages:\n  data: { uses: mnist, with: { path: idx } }\n' });
    writeFileSync(p.path('pipelines/.keep'), '');
    const dir = p.path('pipelines/idx');
    const images = (n: number, side: number) => idx([n, side, side], new Uint8Array(n * side * side));
    p.write('pipelines/idx/.keep', '');
    writeFileSync(`${dir}/train-images-idx3-ubyte`, images(20, 4));
    writeFileSync(`${dir}/train-labels-idx1-ubyte`, idx([20], new Uint8Array(20)));
    writeFileSync(`${dir}/t10k-images-idx3-ubyte`, images(10, 5));
    writeFileSync(`${dir}/t10k-labels-idx1-ubyte`, idx([10], new Uint8Array(10)));
    const r = p.cli(['run', 'pipelines/d.yaml']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /idx\/train-images-idx3-ubyte holds 4×4 images but .*idx\/t10k-images-idx3-ubyte holds 5×5/);
  });
});
