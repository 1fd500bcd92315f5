import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
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

  it('says so when only environment facts differ: a lockfile written on another class of machine', () => {
    const p = new TempProject({ 'pipelines/g.yaml': PIPELINE });
    assert.equal(p.cli(['run', 'pipelines/g.yaml']).status, 0);
    const committed = p.read('pipelines/g.lock.json');
    // What a lockfile written under another Node.js looks like: its fingerprint, and so its digest, differ in that fact alone.
    const lock = JSON.parse(committed) as {
      stages: Record<string, { digest: string; fingerprint: { environment: Record<string, string> } }>;
    };
    lock.stages.a!.fingerprint.environment.node = 'v0.0.1';
    lock.stages.a!.digest = 'f'.repeat(64);
    p.write('pipelines/g.lock.json', JSON.stringify(lock, null, 2));
    const other = p.cli(['status', 'pipelines/g.yaml', '--check']);
    assert.equal(other.status, 1, 'the gate still fails: those stages give other bytes here');
    assert.match(other.stdout, new RegExp(`stale\\s+a\\s+node v0\\.0\\.1 → ${process.version.replace(/\./g, '\\.')}`));
    assert.match(other.stdout, /only environment facts differ \(node v0\.0\.1 → v[\d.]+\), not the pipeline or its stage modules/);

    // With a param edit as well, the pipeline differs too: no such line.
    p.write('pipelines/g.yaml', PIPELINE.replace('greeting: hello', 'greeting: bye'));
    const both = p.cli(['status', 'pipelines/g.yaml', '--check']);
    assert.equal(both.status, 1);
    assert.doesNotMatch(both.stdout, /only environment facts differ/);
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

describe('run --frozen, the CI counterpart of npm ci', () => {
  const RANDOM = `pipeline: r
stages:
  a: { uses: shell, with: { cmd: 'od -An -N8 -tx1 /dev/urandom > $ABLATE_OUT/a.txt', outs: [a.txt] } }
  b: { uses: shell, in: { x: a }, with: { cmd: 'cat $ABLATE_IN_X/a.txt > $ABLATE_OUT/b.txt', outs: [b.txt] } }
`;
  const clean = (p: TempProject) => {
    rmSync(p.path('artifacts'), { recursive: true, force: true });
    rmSync(p.path('.ablate'), { recursive: true, force: true });
  };

  it('rebuilds a clean clone from the lockfile and leaves the lockfile byte for byte as committed', () => {
    const p = new TempProject({ 'pipelines/g.yaml': PIPELINE });
    assert.equal(p.cli(['run', 'pipelines/g.yaml']).status, 0);
    const committed = p.read('pipelines/g.lock.json');
    clean(p);
    const r = p.cli(['run', 'pipelines/g.yaml', '--frozen', '--plain']);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /g: 2 ran, 0 up to date/);
    assert.equal(p.read('artifacts/g/b/b.txt'), 'hello\n');
    assert.equal(p.read('pipelines/g.lock.json'), committed);
    assert.match(p.cli(['run', 'pipelines/g.yaml', '--frozen']).stdout, /g: 0 ran, 2 up to date/);
  });

  it('refuses before running anything when the pipeline no longer matches the lockfile', () => {
    const p = new TempProject({ 'pipelines/g.yaml': PIPELINE });
    assert.equal(p.cli(['run', 'pipelines/g.yaml']).status, 0);
    const committed = p.read('pipelines/g.lock.json');
    clean(p);
    p.write('pipelines/g.yaml', PIPELINE.replace('greeting: hello', 'greeting: bye'));
    const r = p.cli(['run', 'pipelines/g.yaml', '--frozen']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /stale\s+a\s+.*vars/);
    assert.match(r.stdout, /--frozen: pipelines\/g\.lock\.json would change; nothing was run/);
    assert.equal(existsSync(p.path('artifacts/g')), false, 'nothing ran');
    assert.equal(p.read('pipelines/g.lock.json'), committed);

    // A stage removed from the pipeline: a run would drop its entry.
    p.write('pipelines/g.yaml', PIPELINE.split('\n').slice(0, 5).join('\n') + '\n');
    const removed = p.cli(['run', 'pipelines/g.yaml', '--frozen']);
    assert.equal(removed.status, 1);
    assert.match(removed.stdout, /removed\s+b\s+in the lockfile, no longer in the pipeline/);
    assert.equal(p.read('pipelines/g.lock.json'), committed);
  });

  it('fails, naming the stage and the file, when running gives other bytes than the lockfile records; artifacts/ and the lockfile stay as they were', () => {
    const p = new TempProject({ 'pipelines/r.yaml': RANDOM });
    assert.equal(p.cli(['run', 'pipelines/r.yaml']).status, 0);
    const committed = p.read('pipelines/r.lock.json');
    clean(p);
    const r = p.cli(['run', 'pipelines/r.yaml', '--frozen', '--plain']);
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(
      r.stdout + r.stderr,
      /--frozen: a would change pipelines\/r\.lock\.json: its outputs differ from the lockfile's entry: a\.txt/,
    );
    assert.match(r.stdout, /r: 0 ran, 0 up to date, 0 restored, 1 failed, 1 skipped/);
    assert.equal(existsSync(p.path('artifacts/r/a')), false, 'the differing outputs are not materialized');
    assert.equal(p.read('pipelines/r.lock.json'), committed);

    // The cache now holds that execution: --frozen refuses to restore it too; a plain run takes it.
    const again = p.cli(['run', 'pipelines/r.yaml', '--frozen', '--plain']);
    assert.equal(again.status, 1);
    assert.match(again.stdout + again.stderr, /its outputs differ from the lockfile's entry: a\.txt/);
    assert.equal(p.read('pipelines/r.lock.json'), committed);
    assert.equal(p.cli(['run', 'pipelines/r.yaml']).status, 0);
    assert.notEqual(p.read('pipelines/r.lock.json'), committed);
  });

  it('needs a lockfile', () => {
    const p = new TempProject({ 'pipelines/g.yaml': PIPELINE });
    const r = p.cli(['run', 'pipelines/g.yaml', '--frozen']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /--frozen needs pipelines\/g\.lock\.json, and there is none; nothing was run/);
    assert.equal(existsSync(p.path('pipelines/g.lock.json')), false);
  });
});

describe('status --check over several pipelines', () => {
  it('checks each named file, or every pipeline with a lockfile, and fails if any differs', () => {
    const p = new TempProject({ 'pipelines/g.yaml': PIPELINE, 'pipelines/h.yaml': PIPELINE.replace('pipeline: g', 'pipeline: h') });
    assert.equal(p.cli(['run', 'pipelines/g.yaml']).status, 0);
    const all = p.cli(['status', '--check']);
    assert.equal(all.status, 0, all.stdout + all.stderr);
    assert.match(all.stdout, /pipelines\/g\.yaml: the lockfile matches/);
    assert.match(all.stdout, /pipelines\/h\.yaml: no lockfile, not checked/);
    const both = p.cli(['status', '--check', 'pipelines/g.yaml', 'pipelines/h.yaml']);
    assert.equal(both.status, 1);
    assert.match(both.stdout, /stale\s+a\s+not in the lockfile/);
    assert.equal(p.cli(['status', '--check', 'pipelines/g.yaml', 'pipelines/h.yaml', 'a']).status, 2);
  });
});
