// Slow end-to-end checks on the real pipelines (minutes): run with ABLATE_E2E=1, as CI does. The
// quickstart's own end-to-end run is test/ci-templates.test.ts: the CI templates' steps, twice.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot, TempProject } from './helpers.js';

const enabled = Boolean(process.env.ABLATE_E2E);
const REDUCED = ['--set', 'epochs=1', '--set', 'train_images=1000', '--set', 'test_images=200'];

/** Instance ids the plain reporter says ran ("▶ id  running: …"). */
function ran(stdout: string): string[] {
  return [...stdout.matchAll(/^▶ (\S+)\s+running/gm)].map((m) => m[1]!).sort();
}

function project(): TempProject {
  const p = new TempProject();
  cpSync(join(repoRoot, 'pipelines'), p.path('pipelines'), { recursive: true, filter: (src) => !src.endsWith('.lock.json') });
  return p;
}

describe('the seed pipelines end to end', { skip: !enabled && 'set ABLATE_E2E=1 to run (CI does)' }, () => {
  it('a reduced β ablation: rerun is a no-op; adding β = 8 runs only its variant and the gathers; a figure edit reruns that figure and the report', () => {
    const p = project();
    const first = p.cli(['run', 'pipelines/ablation-beta.yaml', ...REDUCED]);
    assert.equal(first.status, 0, first.stdout.slice(-3000) + first.stderr);
    assert.match(p.cli(['run', 'pipelines/ablation-beta.yaml', ...REDUCED]).stdout, /ablation-beta: 0 ran, 21 up to date/);

    // 1. A new ablation value by YAML edit.
    const file = p.path('pipelines/ablation-beta.yaml');
    p.write('pipelines/ablation-beta.yaml', readFileSync(file, 'utf8').replace('beta: [0.5, 1, 2, 4]', 'beta: [0.5, 1, 2, 4, 8]'));
    const status = p.cli(['status', 'pipelines/ablation-beta.yaml', ...REDUCED]);
    assert.match(status.stdout, /stale\s+train\[beta=8\]\s+never ran/);
    const grown = p.cli(['run', 'pipelines/ablation-beta.yaml', ...REDUCED]);
    assert.deepEqual(ran(grown.stdout), [
      'compare',
      'eval[beta=8]',
      'recon[beta=8]',
      'report',
      'tradeoff',
      'train[beta=8]',
      'traverse[beta=8]',
    ]);

    // 2. Editing a figure's params reruns only that figure and the report.
    p.write(
      'pipelines/ablation-beta.yaml',
      readFileSync(file, 'utf8').replace(
        'traverse: { uses: traversals, in: { model: train.model, data: prep } }',
        'traverse: { uses: traversals, in: { model: train.model, data: prep }, with: { steps: 9 } }',
      ),
    );
    const why = p.cli(['status', 'pipelines/ablation-beta.yaml', ...REDUCED]);
    assert.match(why.stdout, /stale\s+traverse\[beta=0\.5\]\s+param steps 11 → 9/);
    const edited = p.cli(['run', 'pipelines/ablation-beta.yaml', ...REDUCED]);
    assert.deepEqual(ran(edited.stdout), [
      'report',
      'traverse[beta=0.5]',
      'traverse[beta=1]',
      'traverse[beta=2]',
      'traverse[beta=4]',
      'traverse[beta=8]',
    ]);
    assert.equal(p.cli(['verify', 'pipelines/ablation-beta.yaml']).status, 0);
  });
});

describe('CI regeneration', { skip: !enabled && 'set ABLATE_E2E=1 to run (CI does)' }, () => {
  it('run --all of chosen pipelines from a clean project rebuilds every artifact; verify proves them; a rerun does nothing', () => {
    const p = project();
    const files = ['pipelines/cvae.yaml', 'pipelines/fashion.yaml'];
    const first = p.cli(['run', '--all', ...files, ...REDUCED]);
    assert.equal(first.status, 0, first.stdout.slice(-3000) + first.stderr);
    assert.match(first.stdout, /cvae: 9 ran, 0 up to date/);
    assert.match(first.stdout, /fashion: 16 ran, 0 up to date/);
    assert.equal(p.cli(['verify', ...files]).status, 0);
    const again = p.cli(['run', '--all', ...files, ...REDUCED]);
    assert.match(again.stdout, /cvae: 0 ran, 9 up to date/);
    assert.match(again.stdout, /fashion: 0 ran, 16 up to date/);
  });
});

describe('every pipeline in pipelines/', () => {
  it('validates', () => {
    const p = project();
    const r = p.cli(['run', '--all', '--dry-run', ...REDUCED]);
    assert.equal(r.status, 0, r.stderr);
    for (const name of [
      'ablation-beta',
      'ablation-latent',
      'cvae',
      'faces',
      'fashion',
      'quickstart',
      'reference',
      'vae-family',
      'vae-mnist',
    ])
      assert.match(r.stdout, new RegExp(`== pipelines/${name}\\.yaml`));
    assert.equal(p.cli(['run', '--all', '--set', 'nope=1']).status, 2);
  });
});

describe('docs/results.md generation', () => {
  it('tabulates every evaluated model of the given lockfiles and states what was not run', () => {
    const p = new TempProject();
    const out = p.path('results.md');
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(repoRoot, 'scripts', 'results.ts'), `--out=${out}`, join(repoRoot, 'pipelines', 'quickstart.lock.json')],
      { cwd: repoRoot, encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const text = readFileSync(out, 'utf8');
    assert.match(text, /\| quickstart \| `eval\[model=conv\]` \| conv \| 2 \| 1 \| 4 \| 10800 \| \d+\.\d \|/);
    assert.match(text, /\| quickstart \| `eval\[model=ae\]` \| ae \| 2 \|/);
    assert.match(text, /d = 15 is best by MSE\/PSNR\*\* — not run yet/);
  });
});
