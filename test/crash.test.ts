import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hostname } from 'node:os';
import { describe, it } from 'node:test';
import { dropIdleHolderRecords, FileLock } from '../src/runner/locks.js';
import { readLockfile } from '../src/runner/lockfile.js';
import { cliPath, TempProject } from './helpers.js';
import { exited, isRunning, waitFor } from './processes.js';

const PIPELINE = `pipeline: c
stages:
  quick: { uses: shell, with: { cmd: 'echo quick > $ABLATE_OUT/q.txt', outs: [q.txt] } }
  slow: { uses: ./stages/sleep.ts, with: { ms: 10, trace: trace, until: trace/release } }
  after: { uses: shell, in: { x: slow }, with: { cmd: 'cp $ABLATE_IN_X/done.txt $ABLATE_OUT/a.txt', outs: [a.txt] } }
`;

function cachedRuns(project: TempProject): number {
  const dir = project.path('.ablate/cache/runs');
  return existsSync(dir) ? readdirSync(dir).flatMap((d) => readdirSync(`${dir}/${d}`)).length : 0;
}

describe('crash safety', () => {
  it('kill -9 mid-stage leaves no partial cache entry or artifact, and a rerun completes', async () => {
    const project = new TempProject({ 'pipelines/c.yaml': PIPELINE });
    const child = project.spawnCli(['run', 'pipelines/c.yaml']);
    await waitFor(() => existsSync(project.path('pipelines/trace/started')) && cachedRuns(project) === 1);
    child.kill('SIGKILL');
    await exited(child);
    // The killed coordinator's worker notices its parent is gone and exits too.
    const workerPid = Number(readFileSync(project.path('pipelines/trace/started'), 'utf8').trim().split(' ')[1]);
    await waitFor(() => !isRunning(workerPid));
    assert.ok(!existsSync(project.path('artifacts/c/slow')), 'no artifact for the interrupted stage');
    assert.ok(!existsSync(project.path('artifacts/c/after')));
    const lock = existsSync(project.path('pipelines/c.lock.json')) ? readLockfile(project.path('pipelines/c.lock.json'))! : { stages: {} };
    assert.ok(!('slow' in lock.stages), 'the lockfile never names an unfinished stage');
    assert.equal(cachedRuns(project), 1, 'only the quick stage is cached');
    assert.ok(
      readdirSync(project.path('.ablate/locks')).some((f) => f.endsWith('.lock')),
      'the dead run left its stage lock behind',
    );

    writeFileSync(project.path('pipelines/trace/release'), '');
    const rerun = project.cli(['run', 'pipelines/c.yaml']);
    assert.equal(rerun.status, 0, rerun.stdout + rerun.stderr);
    assert.match(rerun.stdout, /✓ slow\s+done/);
    // Completed before the kill, in the lockfile or not yet (its writes are batched): never run again.
    assert.match(rerun.stdout, /1 up to date|1 restored/);
    assert.doesNotMatch(rerun.stdout, /✓ quick\s+done/);
    assert.equal(project.read('artifacts/c/after/a.txt'), 'slow\n');
    assert.deepEqual(readdirSync(project.path('.ablate/locks')), [], 'the stale lock was taken over and released');
    const verify = project.cli(['verify']);
    assert.equal(verify.status, 0, verify.stderr);
  });

  it('Ctrl-C stops running stages, caches nothing partial, and exits 130', async () => {
    const project = new TempProject({ 'pipelines/c.yaml': PIPELINE });
    const child = project.spawnCli(['run', 'pipelines/c.yaml']);
    await waitFor(() => existsSync(project.path('pipelines/trace/started')));
    child.kill('SIGINT');
    assert.equal(await exited(child), 130);
    assert.ok(!existsSync(project.path('artifacts/c/slow')));
    assert.deepEqual(readdirSync(project.path('.ablate/tmp')), []);
    assert.deepEqual(readdirSync(project.path('.ablate/locks')), []);
  });

  it('two runs at once: the stage runs once, the second run waits and restores it', async () => {
    // The slow stage holds until the second run has said it waits for it: no race with a fixed sleep.
    const project = new TempProject({ 'pipelines/c.yaml': PIPELINE });
    const first = project.spawnCli(['run', 'pipelines/c.yaml']);
    await waitFor(() => existsSync(project.path('pipelines/trace/started')));
    const second = project.spawnCli(['run', 'pipelines/c.yaml']);
    let secondOut = '';
    second.stdout.on('data', (d: Buffer) => (secondOut += d.toString()));
    await waitFor(() => /waiting: another ablate run/.test(secondOut));
    writeFileSync(project.path('pipelines/trace/release'), '');
    const [a, b] = await Promise.all([exited(first), exited(second)]);
    assert.equal(a, 0);
    assert.equal(b, 0, secondOut);
    assert.match(secondOut, /slow\s+waiting: another ablate run \(pid \d+\) is running this stage/);
    assert.match(secondOut, /slow\s+(up to date|restored from cache)/);
    const starts = readFileSync(project.path('pipelines/trace/started'), 'utf8').trim().split('\n');
    assert.equal(starts.length, 1, 'the slow stage executed exactly once');
    assert.deepEqual(Object.keys(readLockfile(project.path('pipelines/c.lock.json'))!.stages).sort(), ['after', 'quick', 'slow']);
    assert.equal(project.cli(['verify']).status, 0);
  });
});

describe('FileLock', () => {
  it('refuses a second holder while the first is alive, and takes over a dead one', () => {
    const project = new TempProject();
    const path = project.path('x.lock');
    const lock = FileLock.tryAcquire(path);
    assert.ok(lock instanceof FileLock);
    const again = FileLock.tryAcquire(path);
    assert.ok(!(again instanceof FileLock));
    assert.equal(again.pid, process.pid);
    lock.release();
    // A holder whose process is gone: a child that has already exited.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    writeFileSync(path, JSON.stringify({ pid: Number(dead.stdout), host: hostname(), since: 'earlier' }));
    const taken = FileLock.tryAcquire(path);
    assert.ok(taken instanceof FileLock, 'a lock whose holder died is taken over');
    taken.release();
  });

  it('takes each lock by linking one holder record: a release deletes a name, not a file, and the record goes when no lock is held', () => {
    const project = new TempProject();
    const dir = project.path('locks');
    mkdirSync(dir);
    const a = FileLock.tryAcquire(join(dir, 'a.lock'));
    const b = FileLock.tryAcquire(join(dir, 'b.lock'));
    assert.ok(a instanceof FileLock && b instanceof FileLock);
    const records = readdirSync(dir).filter((name) => !name.endsWith('.lock'));
    assert.equal(records.length, 1, 'one record for both locks');
    const record = join(dir, records[0]!);
    assert.equal(statSync(join(dir, 'a.lock')).ino, statSync(record).ino);
    assert.equal(statSync(record).nlink, 3);
    assert.equal((JSON.parse(readFileSync(join(dir, 'b.lock'), 'utf8')) as { pid: number }).pid, process.pid);
    a.release();
    dropIdleHolderRecords();
    assert.ok(existsSync(record), 'kept while b is held');
    b.release();
    assert.deepEqual(readdirSync(dir), [records[0]], 'releasing removed the names only');
    dropIdleHolderRecords();
    assert.deepEqual(readdirSync(dir), []);
    // A record deleted behind its back (by hand, with its folder) is written again.
    const c = FileLock.tryAcquire(join(dir, 'c.lock'));
    assert.ok(c instanceof FileLock);
    rmSync(
      join(
        dir,
        readdirSync(dir).find((name) => !name.endsWith('.lock'))!,
      ),
    );
    c.release();
    const d = FileLock.tryAcquire(join(dir, 'd.lock'));
    assert.ok(d instanceof FileLock, 'a lock after its record vanished');
    d.release();
    dropIdleHolderRecords();
    assert.deepEqual(readdirSync(dir), []);
  });
});

describe('nothing left behind', () => {
  it("a shell stage's processes die with a coordinator killed -9, and the next run removes what it left", async () => {
    const project = new TempProject({
      'pipelines/k.yaml': `pipeline: k\nstages:\n  wait: { uses: shell, with: { cmd: 'echo $$ > started; while [ ! -f release ]; do sleep 0.05; done; touch after', outs: [] } }\n`,
    });
    const child = project.spawnCli(['run', 'pipelines/k.yaml']);
    await waitFor(
      () => existsSync(project.path('pipelines/started')) && readFileSync(project.path('pipelines/started'), 'utf8').trim() !== '',
    );
    const shellPid = Number(readFileSync(project.path('pipelines/started'), 'utf8'));
    child.kill('SIGKILL');
    await exited(child);
    writeFileSync(project.path('pipelines/release'), '');
    // Alive, the loop would see `release`, touch `after`, then exit: either way its pid ends.
    await waitFor(() => !isRunning(shellPid));
    assert.ok(!existsSync(project.path('pipelines/after')), 'the command was stopped with its coordinator');
    assert.equal(readdirSync(project.path('.ablate/tmp')).length, 1, 'the killed run left its temp dir');
    rmSync(project.path('pipelines/release'));
    writeFileSync(project.path('pipelines/k.yaml'), 'pipeline: k\nstages:\n  other: { uses: shell, with: { cmd: "true" } }\n');
    assert.equal(project.cli(['run', 'pipelines/k.yaml']).status, 0);
    assert.deepEqual(readdirSync(project.path('.ablate/tmp')), [], 'a later run removed it, without gc');
    assert.deepEqual(readdirSync(project.path('.ablate/locks')), []);
  });

  it('gc --dry-run looks while a run is going on; gc itself refuses, naming each pid once', async () => {
    const project = new TempProject({ 'pipelines/c.yaml': PIPELINE });
    const run = project.spawnCli(['run', 'pipelines/c.yaml']);
    await waitFor(() => existsSync(project.path('pipelines/trace/started')));
    const dry = project.cli(['gc', '--dry-run']);
    assert.equal(dry.status, 0, dry.stderr);
    assert.match(dry.stdout, /would remove/);
    const real = project.cli(['gc']);
    assert.equal(real.status, 1);
    const pids = /pid ([\d, ]+)\)/.exec(real.stderr)![1]!.split(', ');
    assert.equal(new Set(pids).size, pids.length, real.stderr);
    writeFileSync(project.path('pipelines/trace/release'), '');
    assert.equal(await exited(run), 0);
  });

  it('files ablate writes have their modes whatever the umask', () => {
    const project = new TempProject({ 'pipelines/c.yaml': 'pipeline: c\nstages:\n  a: { uses: ./stages/emit.ts, with: { value: 1 } }\n' });
    const r = spawnSync('sh', ['-c', `umask 000; exec "${process.execPath}" "${cliPath}" run pipelines/c.yaml`], {
      cwd: project.root,
      encoding: 'utf8',
      env: { ...process.env, CI: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    const mode = (rel: string) => (statSync(project.path(rel)).mode & 0o777).toString(8);
    const entry = readLockfile(project.path('pipelines/c.lock.json'))!.stages.a!;
    const object = entry.outputs['value.json']!.digest;
    assert.equal(mode(`.ablate/cache/objects/${object.slice(0, 2)}/${object.slice(2)}`), '444');
    assert.equal(mode(`.ablate/cache/runs/${entry.digest.slice(0, 2)}/${entry.digest.slice(2)}.json`), '644');
    assert.equal(mode('pipelines/c.lock.json'), '644');
    assert.equal(mode('.ablate/stat-cache.json'), '644');
    assert.equal(mode('artifacts/c/a/value.json'), '644');
  });
});
