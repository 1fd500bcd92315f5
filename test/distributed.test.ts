// The BullMQ executor against a real Redis (Debian's redis-server on a free port, no
// persistence) and two real `ablate worker` processes. CI installs redis-server and sets
// ABLATE_REQUIRE_REDIS=1; elsewhere, without the binary, the suite says it is skipped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cliPath, TempProject } from './helpers.js';
import { readLockfile } from '../src/runner/lockfile.js';
import { exited, hasRedisServer, start, startRedis, waitFor, type Started } from './processes.js';

const skip =
  !hasRedisServer() && !process.env.ABLATE_REQUIRE_REDIS ? 'redis-server not installed (apt-get install -y redis-server)' : false;

function listing(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir, { recursive: true }).map(String).sort() : [];
}

describe('--executor bullmq with two workers over a real Redis', { skip }, () => {
  const started: Started[] = [];
  let url = '';
  let project: TempProject;
  let workerRoot = '';
  const workers: Started[] = [];

  let redis: Awaited<ReturnType<typeof startRedis>>;

  before(async () => {
    redis = await startRedis();
    started.push(redis);
    url = redis.url;
    project = new TempProject({
      'pipelines/m.yaml': `pipeline: m
stages:
  data: { uses: ./stages/emit.ts, with: { value: 3 } }
  work:
    uses: shell
    matrix: { i: [1, 2, 3, 4] }
    in: { d: data }
    with: { cmd: 'sleep 1; { echo \${matrix.i}; cat $ABLATE_IN_D/value.json; } > $ABLATE_OUT/out.txt', outs: [out.txt] }
  flaky:
    uses: shell
    retries: 1
    with: { cmd: 'if [ -f flaky.marker ]; then echo ok > $ABLATE_OUT/ok.txt; else touch flaky.marker; echo first attempt fails; exit 3; fi', outs: [ok.txt] }
  all: { uses: shell, in: { w: "work[*]" }, with: { cmd: 'for d in $ABLATE_IN_W; do cat $d/out.txt; done > $ABLATE_OUT/all.txt', outs: [all.txt] } }
`,
      'pipelines/where.yaml':
        'pipeline: where\nstages:\n  fact: { uses: ./stages/machine.ts }\n  data: { uses: ./stages/emit.ts, with: { value: 9 } }\n',
      'pipelines/logs.yaml': 'pipeline: logs\nstages:\n  nap: { uses: ./stages/sleep.ts, with: { ms: 50 } }\n',
    });
    // The workers' machine: its own checkout of the project, the coordinator's store as the shared cache.
    workerRoot = mkdtempSync(join(tmpdir(), 'ablate-worker-'));
    cpSync(project.root, workerRoot, { recursive: true });
    for (let i = 0; i < 2; i++) {
      const worker = start(
        process.execPath,
        [cliPath, 'worker', '--redis', url, '--stalled-ms', '1500', '--cache', project.path('.ablate/cache')],
        workerRoot,
        { ABLATE_TEST_MACHINE: 'worker-box' },
      );
      started.push(worker);
      workers.push(worker);
      await worker.waitFor(/waiting for jobs/);
    }
  });

  after(async () => {
    for (const p of started.reverse()) await p.stop();
    rmSync(workerRoot, { recursive: true, force: true });
    rmSync(project.root, { recursive: true, force: true });
  });

  it('runs every stage on the workers, survives a worker killed with -9 mid-stage, retries a flaky stage', async () => {
    const run = start(
      process.execPath,
      [cliPath, 'run', 'pipelines/m.yaml', '--executor', 'bullmq', '--redis', url, '--plain'],
      project.root,
    );
    await workers[0]!.waitFor(/runs work\[i=\d\]/);
    const killedStage = /runs (work\[i=\d\])/.exec(workers[0]!.output())![1]!;
    workers[0]!.child.kill('SIGKILL');
    const code = await exited(run.child);
    assert.equal(code, 0, run.output());
    assert.match(run.output(), /m: 7 ran, 0 up to date, 0 restored, 0 failed/);
    assert.match(run.output(), /retrying \(attempt 2 of 2\)/);
    assert.match(run.output(), /its worker stopped answering/);
    assert.ok(
      workers[1]!.output().includes(`done ${killedStage}`),
      `${killedStage} finished on the other worker:\n${workers[1]!.output()}`,
    );
    for (const i of [1, 2, 3, 4])
      assert.equal(readFileSync(project.path(`artifacts/m/work/i=${i}/out.txt`), 'utf8').split('\n')[0], String(i));
    assert.equal(readFileSync(project.path('artifacts/m/all/all.txt'), 'utf8').match(/"value":3/g)?.length, 4);
    assert.equal(project.cli(['verify']).status, 0);
  });

  it("a second distributed run executes nothing; local and distributed runs restore each other's cache entries", () => {
    const gc = spawnSync(process.execPath, [cliPath, 'gc'], { cwd: workerRoot, encoding: 'utf8' });
    assert.equal(gc.status, 1, 'gc in a checkout with live workers would delete their job directories');
    assert.equal(
      gc.stderr,
      `ablate gc: another ablate run or worker is active (pid ${workers[1]!.child.pid}); run gc when it has finished\n`,
      'the killed worker no longer counts',
    );
    const again = project.cli(['run', 'pipelines/m.yaml', '--executor', 'bullmq', '--redis', url, '--plain']);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /m: 0 ran, 7 up to date/);
    rmSync(project.path('artifacts'), { recursive: true });
    project.write('pipelines/m.yaml', project.read('pipelines/m.yaml').replace('i: [1, 2, 3, 4]', 'i: [1, 2, 3, 4, 5]'));
    const local = project.cli(['run', 'pipelines/m.yaml', '--plain']);
    assert.equal(local.status, 0, local.stderr);
    assert.match(local.stdout, /m: 2 ran, 0 up to date, 6 restored/, 'only work[i=5] and all ran locally');
    rmSync(project.path('artifacts'), { recursive: true });
    const back = project.cli(['run', 'pipelines/m.yaml', '--executor', 'bullmq', '--redis', url, '--plain']);
    assert.equal(back.status, 0, back.stderr);
    assert.match(back.stdout, /m: 0 ran, 0 up to date, 8 restored/);
  });

  it('a corrupted object in the shared store is caught by the worker that downloads it, and the next run refills it', () => {
    const lock = JSON.parse(project.read('pipelines/m.lock.json')) as {
      stages: Record<string, { outputs: Record<string, { digest: string }> }>;
    };
    const digest = lock.stages.data!.outputs['value.json']!.digest;
    const object = project.path(`.ablate/cache/objects/${digest.slice(0, 2)}/${digest.slice(2)}`);
    chmodSync(object, 0o644);
    writeFileSync(object, '{"value":666}');
    const failed = project.cli(['run', 'pipelines/m.yaml', '--executor', 'bullmq', '--redis', url, '--plain', '--force', 'work[i=1]']);
    assert.equal(failed.status, 1, failed.stdout);
    assert.match(
      failed.stdout + failed.stderr,
      new RegExp(`cache object \\S*${digest.slice(2)} \\(for value\\.json\\) does not match its digest`),
    );
    const healed = project.cli(['run', 'pipelines/m.yaml', '--executor', 'bullmq', '--redis', url, '--plain', '--force', 'work[i=1]']);
    assert.equal(healed.status, 0, healed.stdout + healed.stderr);
    assert.match(healed.stdout, /m: 1 ran, 7 up to date/);
    assert.equal(readFileSync(object, 'utf8'), project.read('artifacts/m/data/value.json'));
  });

  it('a worker refuses a stage fingerprinted with other code or other machine facts', () => {
    const queued = ['run', 'pipelines/where.yaml', '--executor', 'bullmq', '--redis', url, '--plain'];
    const otherMachine = project.cli([...queued, 'fact'], { ABLATE_TEST_MACHINE: 'laptop' });
    assert.equal(otherMachine.status, 1);
    assert.match(
      otherMachine.stdout + otherMachine.stderr,
      /this worker's machine differs from what the stage was fingerprinted with \(machine: worker-box here, laptop on the coordinator\)/,
    );
    const sameMachine = project.cli([...queued, 'fact'], { ABLATE_TEST_MACHINE: 'worker-box' });
    assert.equal(sameMachine.status, 0, sameMachine.stdout + sameMachine.stderr);
    assert.equal(project.read('artifacts/where/fact/fact.txt'), 'worker-box');

    project.write('pipelines/stages/emit.ts', `${project.read('pipelines/stages/emit.ts')}// edited on the coordinator only\n`);
    const otherCode = project.cli([...queued, 'data']);
    assert.equal(otherCode.status, 1);
    assert.match(
      otherCode.stdout + otherCode.stderr,
      /this worker's code differs from the coordinator's \(stages\/emit\.ts\); update its checkout/,
    );
  });

  it("a stage's log lines on a worker reach the coordinator's display", () => {
    const run = project.cli(['run', 'pipelines/logs.yaml', '--executor', 'bullmq', '--redis', url, '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /› nap +about to finish\n(.*\n)*✓ nap +done in/);
  });

  it('says when no worker listens on the queue, and goes on once one does', async () => {
    const run = start(
      process.execPath,
      [
        cliPath,
        'run',
        'pipelines/where.yaml',
        'fact',
        '--executor',
        'bullmq',
        '--redis',
        url,
        '--queue',
        'other',
        '--plain',
        '--force',
        'fact',
      ],
      project.root,
      { ABLATE_TEST_MACHINE: 'worker-box' },
    );
    await run.waitFor(
      /fact +queued; no worker is listening yet \(start one: ablate worker --redis redis:\/\/127\.0\.0\.1:\d+ --queue other\)/,
    );
    const late = start(
      process.execPath,
      [cliPath, 'worker', '--redis', url, '--queue', 'other', '--cache', project.path('.ablate/cache')],
      workerRoot,
      { ABLATE_TEST_MACHINE: 'worker-box' },
    );
    started.push(late);
    assert.equal(await exited(run.child), 0, run.output());
    assert.match(run.output(), /where: 1 ran/);
    assert.match(project.read('.ablate/logs/where/fact.log'), /# ran on [^\n]+:\d+\n/);
    await late.stop();
  });

  it('a worker rides out a Redis restart: one error line, then reconnected, then it takes jobs again', async () => {
    const worker = workers[1]!;
    const before = worker.output().length;
    await redis.stop();
    await worker.waitFor(/error: .* \(retrying\)\n/);
    await new Promise((r) => setTimeout(r, 1500));
    redis = await startRedis(redis.port);
    started.push(redis);
    await worker.waitFor(/reconnected to redis:/);
    const during = worker.output().slice(before);
    // About five reconnection attempts fail meanwhile; each distinct error is said once.
    const errors = during.match(/error: .* \(retrying\)/g) ?? [];
    assert.ok(errors.length >= 1 && errors.length <= 3 && errors.every((e, i) => e !== errors[i - 1]), during);
    const r = project.cli(['run', 'pipelines/where.yaml', 'fact', '--executor', 'bullmq', '--redis', url, '--plain', '--force', 'fact'], {
      ABLATE_TEST_MACHINE: 'worker-box',
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  it(
    'Redis lost mid-run: the coordinator gives up after its timeout, names the stage in flight, exits 1; workers stay',
    { timeout: 120_000 },
    async () => {
      const pipeline =
        "pipeline: lost\nstages:\n  hold: { uses: shell, with: { cmd: 'touch started; while [ ! -f release ]; do sleep 0.05; done; echo done > $ABLATE_OUT/h.txt', outs: [h.txt] } }\n";
      project.write('pipelines/lost.yaml', pipeline);
      writeFileSync(join(workerRoot, 'pipelines/lost.yaml'), pipeline);
      const run = start(
        process.execPath,
        [cliPath, 'run', 'pipelines/lost.yaml', '--executor', 'bullmq', '--redis', url, '--plain'],
        project.root,
        { ABLATE_REDIS_TIMEOUT_MS: '1500' },
      );
      await waitFor(() => existsSync(join(workerRoot, 'pipelines/started')));
      await redis.stop();
      assert.equal(await exited(run.child), 1, run.output());
      assert.match(
        run.output(),
        /hold\s+failed: lost Redis at redis:\/\/127\.0\.0\.1:\d+ for 1\.5 s, with hold in flight; what completed is in the cache and the lockfile/,
      );
      assert.doesNotMatch(run.output(), /Unhandled error event/);
      assert.ok(
        !existsSync(project.path('pipelines/lost.lock.json')) ||
          !('hold' in readLockfile(project.path('pipelines/lost.lock.json'))!.stages),
      );
      writeFileSync(join(workerRoot, 'pipelines/release'), '');
      const worker = workers[1]!;
      const before = worker.output().length;
      redis = await startRedis(redis.port);
      started.push(redis);
      await waitFor(() => /reconnected to redis:/.test(worker.output().slice(before)));
      assert.equal(worker.child.exitCode, null, 'the worker kept running');
    },
  );

  it('Redis unreachable: a clear error, exit 1, nothing run or written', () => {
    const lock = project.read('pipelines/m.lock.json');
    const tmpBefore = listing(project.path('.ablate/tmp'));
    project.write('pipelines/m.yaml', project.read('pipelines/m.yaml').replace('value: 3', 'value: 4'));
    const r = project.cli(['run', 'pipelines/m.yaml', '--executor', 'bullmq', '--redis', 'redis://127.0.0.1:1', '--plain']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot reach Redis at redis:\/\/127\.0\.0\.1:1: .*; nothing was run/);
    assert.equal(project.read('pipelines/m.lock.json'), lock);
    assert.deepEqual(listing(project.path('.ablate/tmp')), tmpBefore);
  });
});
