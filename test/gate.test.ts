import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { describe, it } from 'node:test';
import { TempProject } from './helpers.js';

const PIPELINE = `pipeline: g
params:
  greeting: hello
stages:
  a: { uses: shell, with: { cmd: 'echo "\${params.greeting}" > $ABLATE_OUT/a.txt', outs: [a.txt] } }
  b: { uses: shell, in: { x: a }, with: { cmd: 'cat $ABLATE_IN_X/a.txt > $ABLATE_OUT/b.txt', outs: [b.txt] } }
`;

describe('status --check, the CI gate', () => {
  it('passes when the lockfile matches, even with no artifacts or cache (a fresh clone), and fails naming what changed', () => {
    const p = new TempProject({ 'pipelines/g.yaml': PIPELINE });
    assert.equal(p.cli(['run', 'pipelines/g.yaml']).status, 0);
    const ok = p.cli(['status', 'pipelines/g.yaml', '--check']);
    assert.equal(ok.status, 0, ok.stdout + ok.stderr);
    assert.match(ok.stdout, /the lockfile matches the pipeline and code \(2 stages\)/);

    // What CI has: the committed files only.
    rmSync(p.path('artifacts'), { recursive: true, force: true });
    rmSync(p.path('.ablate'), { recursive: true, force: true });
    assert.equal(p.cli(['status', 'pipelines/g.yaml', '--check']).status, 0, 'nothing but the lockfile is needed');

    // A param edit: a differs from its entry; b waits for it (its input changes only if a's output does).
    p.write('pipelines/g.yaml', PIPELINE.replace('greeting: hello', 'greeting: bye'));
    const stale = p.cli(['status', 'pipelines/g.yaml', '--check']);
    assert.equal(stale.status, 1);
    assert.match(stale.stdout, /stale\s+a\s+.*vars/);
    assert.match(stale.stdout, /stale\s+b\s+waits for a, whose outputs may change/);
    assert.match(stale.stdout, /1 of 2 stages differ from the lockfile and would rerun; 1 more wait for them/);
    assert.equal(p.cli(['run', 'pipelines/g.yaml']).status, 0);
    assert.equal(p.cli(['status', 'pipelines/g.yaml', '--check']).status, 0);
  });

  it('fails for a stage the lockfile has never seen', () => {
    const p = new TempProject({ 'pipelines/g.yaml': PIPELINE });
    assert.equal(p.cli(['run', 'pipelines/g.yaml']).status, 0);
    p.write('pipelines/g.yaml', `${PIPELINE}  c: { uses: shell, with: { cmd: 'true' } }\n`);
    const r = p.cli(['status', 'pipelines/g.yaml', '--check']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /stale\s+c\s+not in the lockfile/);
    assert.match(r.stdout, /1 of 3 stages differ from the lockfile and would rerun; 0 more wait/);
  });
});
