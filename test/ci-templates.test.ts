// The CI templates users copy (docs/ci/): their steps run here as a CI system would run them, so
// they cannot rot. The fast checks (always) read the files: every action is one this file maps,
// every expression one it evaluates, every ablate option one the CLI has. The end-to-end run
// (ABLATE_E2E=1, as CI does) executes each template's steps in order in a fresh clone, twice:
// the second time with the cache the first one saved.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { parse } from 'yaml';
import { loadNativeAddon } from '../src/ml/native-addon.js';
import { cliPath, repoRoot } from './helpers.js';

const enabled = Boolean(process.env.ABLATE_E2E);
const TEMPLATES = ['github-actions', 'gitlab-ci'] as const;
type Template = (typeof TEMPLATES)[number];
/** A step as long as the slowest here (npm ci, a training) may take on a loaded machine, many times over. */
const STEP_TIMEOUT_MS = 30 * 60_000;

function template(name: Template): Record<string, unknown> {
  return parse(readFileSync(join(repoRoot, 'docs', 'ci', `${name}.yml`), 'utf8')) as Record<string, unknown>;
}

interface GithubStep {
  readonly name?: string;
  readonly uses?: string;
  readonly run?: string;
  readonly if?: string;
  readonly with?: Record<string, string | number>;
  readonly env?: Record<string, string>;
}

interface GitlabJob {
  readonly rules?: { if: string }[];
  readonly cache?: { key: string; fallback_keys?: string[]; paths: string[]; when?: string };
  readonly script: string[];
  readonly after_script?: string[];
  readonly artifacts?: { paths: string[]; when?: string };
  readonly image?: string;
}

function githubSteps(): GithubStep[] {
  const jobs = template('github-actions').jobs as Record<string, { steps: GithubStep[] }>;
  assert.equal(Object.keys(jobs).length, 1, 'one job');
  return Object.values(jobs)[0]!.steps;
}

function gitlabJob(): GitlabJob {
  const doc = template('gitlab-ci');
  return doc.ablate as GitlabJob;
}

/** What a pull-request run knows about itself: the values the templates' expressions and variables read. */
interface Event {
  readonly baseRef: string;
  readonly number: string;
}

/** GitHub's `${{ … }}`: only the expressions the template uses; any other fails the test by name. */
function githubExpression(expression: string, event: Event, work: string): string {
  const e = expression.trim();
  const values: Record<string, string> = {
    'runner.os': 'Linux',
    'github.base_ref': event.baseRef,
    'github.event_name': 'pull_request',
    'github.event.pull_request.number': event.number,
    'github.token': 'test-token',
  };
  if (Object.hasOwn(values, e)) return values[e]!;
  const hash = /^hashFiles\('([^']+)'\)$/.exec(e);
  if (hash) {
    // GitHub's hashFiles: SHA-256 over each matched file's SHA-256, in path order.
    const outer = createHash('sha256');
    for (const file of expandGlob(work, hash[1]!))
      outer.update(
        createHash('sha256')
          .update(readFileSync(join(work, file)))
          .digest(),
      );
    return outer.digest('hex');
  }
  throw new Error(`the test does not know GitHub's expression \${{ ${e} }}: map it here`);
}

function substitute(text: string, event: Event, work: string): string {
  return text.replace(/\$\{\{(.+?)\}\}/g, (_, e: string) => githubExpression(e, event, work));
}

/** A step's `if:`, given whether an earlier step failed: always() runs regardless, anything else only after success. */
function githubCondition(condition: string | undefined, failed: boolean, event: Event, work: string): boolean {
  if (condition === undefined) return !failed;
  if (condition.trim() === 'always()') return true;
  const equality = /^(.+?)\s*==\s*'([^']*)'$/.exec(condition.trim());
  if (!equality) throw new Error(`the test does not know GitHub's condition '${condition}': map it here`);
  return !failed && githubExpression(equality[1]!, event, work) === equality[2];
}

/** `dir/*.ext` and `a/*\/b/` globs (one `*` per segment), as the templates write them. */
function expandGlob(root: string, pattern: string): string[] {
  let paths = [''];
  for (const segment of pattern.replace(/\/$/, '').split('/')) {
    const regex = new RegExp(`^${segment.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    paths = paths.flatMap((p) => {
      const dir = join(root, p);
      if (!existsSync(dir)) return [];
      return readdirSync(dir)
        .filter((n) => regex.test(n))
        .map((n) => (p ? `${p}/${n}` : n));
    });
  }
  return paths.sort();
}

/** Programs the templates call that this machine must not run for real: a package install (.ci/run has installed them), posting a comment. */
function shims(dir: string, out: string): string {
  mkdirSync(dir, { recursive: true });
  const script = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/usr/bin/env bash\nset -euo pipefail\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  script('sudo', 'exec "$@"');
  script(
    'apt-get',
    `case "$1" in
  update) exit 0 ;;
  install) shift; for p in "$@"; do [ "$p" = -y ] && continue; dpkg -s "$p" >/dev/null 2>&1 || { echo "apt-get (test): $p is not installed on this machine" >&2; exit 100; }; done ;;
  *) echo "apt-get (test): unexpected $*" >&2; exit 100 ;;
esac`,
  );
  // gh pr comment N --body-file F; curl … --data-urlencode body@F URL
  script(
    'gh',
    `printf '%s\\n' "$*" >> "${out}/gh-calls.txt"; while [ $# -gt 0 ]; do [ "$1" = --body-file ] && cp "$2" "${out}/comment.md"; shift; done`,
  );
  script(
    'curl',
    `printf '%s\\n' "$*" >> "${out}/curl-calls.txt"; for a in "$@"; do case "$a" in body@*) cp "\${a#body@}" "${out}/comment.md" ;; esac; done`,
  );
  return dir;
}

interface StepResult {
  readonly name: string;
  readonly status: number | 'skipped';
  readonly seconds: number;
  readonly output: string;
}

interface JobRun {
  readonly steps: StepResult[];
  readonly work: string;
  readonly out: string;
}

function shell(script: string, cwd: string, env: NodeJS.ProcessEnv): { status: number; output: string } {
  const r = spawnSync('bash', ['--noprofile', '--norc', '-eo', 'pipefail', '-c', script], {
    cwd,
    env,
    encoding: 'utf8',
    timeout: STEP_TIMEOUT_MS,
    killSignal: 'SIGKILL',
    maxBuffer: 256 * 1024 * 1024,
  });
  return { status: r.status ?? -1, output: `${r.stdout}${r.stderr}${r.error ? `\n[test: ${r.error.message}]` : ''}` };
}

function timed(name: string, run: () => { status: number; output: string }): StepResult {
  const started = performance.now();
  const r = run();
  return { name, status: r.status, seconds: (performance.now() - started) / 1000, output: r.output };
}

/** A copy of a directory's files at `to` (a CI cache entry, an uploaded artifact). */
function copyPaths(fromRoot: string, paths: readonly string[], toRoot: string): number {
  for (const p of paths) cpSync(join(fromRoot, p), join(toRoot, p), { recursive: true });
  return paths.length;
}

/**
 * An origin repository for the run: this checkout's HEAD as the pull request's branch `pr`,
 * and `base` at the commit before the last change to the quickstart's lockfile, so the
 * comment has changes to show.
 */
function makeOrigin(root: string): { origin: string; event: Event; relocked: boolean } {
  const origin = join(root, 'origin.git');
  execFileSync('git', ['clone', '-q', '--bare', repoRoot, origin]);
  const git = (...args: string[]) => execFileSync('git', ['-C', repoRoot, ...args], { encoding: 'utf8' }).trim();
  const head = git('rev-parse', 'HEAD');
  let base = head;
  try {
    base = git('rev-parse', `${git('log', '-1', '--format=%H', '--', 'pipelines/quickstart.lock.json')}~1`);
  } catch {
    // A shallow clone has no older commit: the comment then says nothing changed.
  }
  execFileSync('git', ['-C', origin, 'update-ref', 'refs/heads/pr', head]);
  execFileSync('git', ['-C', origin, 'update-ref', 'refs/heads/base', base]);
  const relocked = commitLockfileOfThisMachine(origin, root);
  return { origin, event: { baseRef: 'base', number: '7' }, relocked };
}

const QUICKSTART_LOCK = 'pipelines/quickstart.lock.json';
/** The fingerprint facts that name the machine rather than the code: CPU class and Node.js version. */
const MACHINE_FACTS = ['cpu', 'node'] as const;
let lockfileOfThisMachine: string | undefined;

/**
 * The committed lockfile is a claim about bytes on the class of machine that wrote it, and on
 * another class the gate fails for its trainings, as the templates say it must. CI gets whatever
 * machine it gets, so there this test does what the templates tell users to do: it commits onto
 * the pull request's branch a quickstart lockfile written on this machine's class (one run, in
 * a clone of its own, once per process). Only the machine facts decide this: a lockfile out of
 * date with the code or params is left as it is, and the gate fails on it.
 */
function commitLockfileOfThisMachine(origin: string, root: string): boolean {
  const here: Record<(typeof MACHINE_FACTS)[number], string | undefined> = { node: process.version, cpu: nativeCpuIsa() };
  const stages = Object.values(
    (
      JSON.parse(readFileSync(join(repoRoot, QUICKSTART_LOCK), 'utf8')) as {
        stages: Record<string, { fingerprint: { environment: Record<string, string> } }>;
      }
    ).stages,
  );
  const otherClass = stages.some(({ fingerprint: { environment } }) =>
    MACHINE_FACTS.some((fact) => fact in environment && environment[fact] !== here[fact]),
  );
  if (!otherClass) return false;
  const work = join(root, 'lockfile-of-this-machine');
  execFileSync('git', ['clone', '-q', '--branch', 'pr', origin, work]);
  if (!lockfileOfThisMachine) {
    // The repository's installed packages and compiled kernels stand in for the template's `npm ci`.
    for (const installed of ['node_modules', 'native/build']) execFileSync('ln', ['-s', join(repoRoot, installed), join(work, installed)]);
    const r = spawnSync(process.execPath, [join(work, 'bin', 'ablate.js'), 'run', 'pipelines/quickstart.yaml', '--plain'], {
      cwd: work,
      env: baseEnv(join(work, 'node_modules', '.bin')),
      encoding: 'utf8',
      timeout: STEP_TIMEOUT_MS,
    });
    assert.equal(r.status, 0, `the quickstart on this machine's class: ${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
    lockfileOfThisMachine = readFileSync(join(work, QUICKSTART_LOCK), 'utf8');
  }
  writeFileSync(join(work, QUICKSTART_LOCK), lockfileOfThisMachine);
  const git = (...args: string[]) => execFileSync('git', ['-C', work, ...args], { encoding: 'utf8' });
  git(
    '-c',
    'user.name=ablate test',
    '-c',
    'user.email=test@ablate.invalid',
    'commit',
    '-q',
    '-m',
    "lockfile of this runner's class",
    '--',
    QUICKSTART_LOCK,
  );
  git('push', '-q', 'origin', 'HEAD:pr');
  rmSync(work, { recursive: true, force: true });
  return true;
}

/** The instruction set oneDNN dispatches to here, the fact the lockfile's trainings record (undefined without the native kernels). */
function nativeCpuIsa(): string | undefined {
  const native = loadNativeAddon();
  return 'addon' in native ? native.addon.cpuIsa() : undefined;
}

function freshClone(origin: string, root: string): string {
  const work = join(root, 'work');
  execFileSync('git', ['clone', '-q', '--branch', 'pr', origin, work]);
  return work;
}

function baseEnv(bin: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${bin}:${process.env.PATH}`, CI: 'true' };
  // The run must find what the template sets up, not what this test process has.
  for (const key of Object.keys(env))
    if (key.startsWith('ABLATE_') || key.startsWith('NODE_TEST') || key === 'NODE_OPTIONS') delete env[key];
  return env;
}

/** A job's scratch space: its root (the clone goes there), `out` for what it leaves (comment, uploads), `bin` with the shims. */
function jobDirectories(prefix: string): { root: string; out: string; bin: string } {
  const root = mkdtempSync(join(tmpdir(), prefix));
  const out = join(root, 'out');
  mkdirSync(out);
  return { root, out, bin: shims(join(root, 'bin'), out) };
}

/** The workflow's one job, step by step, as GitHub's runner does it; `cacheRoot` holds the cache entries by key. */
function runGithub(origin: string, event: Event, cacheRoot: string): JobRun {
  const { root, out, bin } = jobDirectories('ablate-gha-');
  const doc = template('github-actions');
  const steps: StepResult[] = [];
  let work = '';
  let failed = false;
  const summary = join(out, 'step-summary.md');
  for (const [n, step] of githubSteps().entries()) {
    const name = step.name ?? step.uses ?? `step ${n + 1}`;
    if (work && !githubCondition(step.if, failed, event, work)) {
      steps.push({ name, status: 'skipped', seconds: 0, output: '' });
      continue;
    }
    const env: NodeJS.ProcessEnv = { ...baseEnv(bin), GITHUB_STEP_SUMMARY: summary };
    for (const [k, v] of Object.entries({ ...(doc.env as Record<string, string>), ...step.env }))
      env[k] = substitute(String(v), event, work);
    const w = Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, substitute(String(v), event, work)]));
    const result = timed(name, () => {
      const action = step.uses?.replace(/@.*$/, '');
      if (step.run !== undefined) return shell(substitute(step.run, event, work), work, env);
      if (action === 'actions/checkout') {
        assert.equal(w['fetch-depth'], '0', 'ablate diff needs the history');
        work = freshClone(origin, root);
        return { status: 0, output: `cloned into ${work}` };
      }
      if (action === 'actions/setup-node') {
        const major = process.versions.node.split('.')[0];
        return {
          status: w['node-version'] === major ? 0 : 1,
          output: `node ${process.versions.node}, template asks for ${w['node-version']}`,
        };
      }
      if (action === 'actions/cache/restore') {
        const keys = [w.key!, ...(w['restore-keys'] ?? '').split('\n').filter(Boolean)];
        const entries = existsSync(cacheRoot) ? readdirSync(cacheRoot).sort() : [];
        const hit = entries.includes(keys[0]!)
          ? keys[0]
          : keys.slice(1).flatMap((prefix) => entries.filter((e) => e.startsWith(prefix)).slice(-1))[0];
        if (!hit) return { status: 0, output: 'cache not found' };
        cpSync(join(cacheRoot, hit), join(work, w.path!), { recursive: true });
        return { status: 0, output: `restored from key ${hit}` };
      }
      if (action === 'actions/cache/save') {
        if (existsSync(join(cacheRoot, w.key!)))
          return { status: 0, output: `cache entry ${w.key} exists; not saved (entries are immutable)` };
        if (!existsSync(join(work, w.path!))) return { status: 0, output: `${w.path} does not exist; nothing saved` };
        cpSync(join(work, w.path!), join(cacheRoot, w.key!), { recursive: true });
        return { status: 0, output: `saved ${w.path} as ${w.key}` };
      }
      if (action === 'actions/upload-artifact') {
        const n = copyPaths(work, expandGlob(work, w.path!), join(out, 'uploads', w.name!));
        return { status: n ? 0 : 1, output: `uploaded ${n} paths` };
      }
      throw new Error(`the test does not map the action ${step.uses}`);
    });
    steps.push(result);
    if (result.status !== 0) failed = true;
  }
  return { steps, work, out };
}

/** `$NAME` and `${NAME}` as GitLab expands them in cache keys and rules. */
function gitlabExpand(text: string, env: NodeJS.ProcessEnv): string {
  return text.replace(/\$\{?([A-Z_][A-Z0-9_]*)\}?/g, (_, name: string) => env[name] ?? '');
}

function gitlabRule(rule: string, env: NodeJS.ProcessEnv): boolean {
  const m = /^\$([A-Z_][A-Z0-9_]*)\s*==\s*(?:"([^"]*)"|\$([A-Z_][A-Z0-9_]*))$/.exec(rule.trim());
  if (!m) throw new Error(`the test does not know the rule '${rule}': map it here`);
  return (env[m[1]!] ?? '') === (m[2] ?? env[m[3]!] ?? '');
}

/** The `ablate` job as GitLab's shell executor runs it: cache restore, script, after_script, cache save, artifacts. */
function runGitlab(origin: string, event: Event, cacheRoot: string): JobRun {
  const { root, out, bin } = jobDirectories('ablate-glc-');
  const doc = template('gitlab-ci');
  const job = gitlabJob();
  const steps: StepResult[] = [];
  const work = freshClone(origin, root);
  const env: NodeJS.ProcessEnv = {
    ...baseEnv(bin),
    CI_PIPELINE_SOURCE: 'merge_request_event',
    CI_COMMIT_REF_SLUG: 'pr',
    CI_DEFAULT_BRANCH: 'main',
    CI_MERGE_REQUEST_IID: event.number,
    CI_MERGE_REQUEST_TARGET_BRANCH_NAME: event.baseRef,
    CI_API_V4_URL: 'https://gitlab.example/api/v4',
    CI_PROJECT_ID: '1',
    CI_PROJECT_DIR: work,
    ABLATE_NOTE_TOKEN: 'test-token',
  };
  for (const [k, v] of Object.entries(doc.variables as Record<string, string | number>)) env[k] = String(v);
  assert.ok(
    job.rules?.some((r) => gitlabRule(r.if, env)),
    'the job runs on a merge request',
  );
  const cache = job.cache!;
  const key = gitlabExpand(cache.key, env);
  steps.push(
    timed('restore cache', () => {
      const hit = [key, ...(cache.fallback_keys ?? []).map((k) => gitlabExpand(k, env))].find((k) => existsSync(join(cacheRoot, k)));
      if (!hit) return { status: 0, output: 'no cache' };
      cpSync(join(cacheRoot, hit), work, { recursive: true });
      return { status: 0, output: `restored ${hit}` };
    }),
  );
  // One shell for the whole script, stopping at the first failing line, as the runner does.
  const script = steps[steps.push(timed('script', () => shell(job.script.join('\n'), work, env))) - 1]!;
  if (job.after_script) steps.push(timed('after_script', () => shell(job.after_script!.join('\n'), work, env)));
  if (cache.when === 'always' || script.status === 0)
    steps.push(
      timed('save cache', () => {
        rmSync(join(cacheRoot, key), { recursive: true, force: true });
        const paths = cache.paths.filter((p) => existsSync(join(work, p)));
        copyPaths(work, paths, join(cacheRoot, key));
        return { status: 0, output: `saved ${paths.join(', ')} as ${key}` };
      }),
    );
  steps.push(
    timed('artifacts', () => {
      const paths = job.artifacts!.paths.flatMap((p) => expandGlob(work, p));
      copyPaths(work, paths, join(out, 'uploads'));
      return { status: paths.length ? 0 : 1, output: `kept ${paths.join(', ')}` };
    }),
  );
  return { steps, work, out };
}

function report(t: TestContext, label: string, run: JobRun): void {
  for (const s of run.steps)
    t.diagnostic(`${label}: ${s.name}: ${s.status === 'skipped' ? 'skipped' : `exit ${s.status}, ${s.seconds.toFixed(1)} s`}`);
  t.diagnostic(`${label}: total ${run.steps.reduce((sum, s) => sum + s.seconds, 0).toFixed(1)} s`);
}

function assertSucceeded(run: JobRun): string {
  for (const s of run.steps)
    assert.ok(s.status === 0 || s.status === 'skipped', `${s.name} failed (${s.status}):\n${s.output.slice(-4000)}`);
  return run.steps.map((s) => s.output).join('\n');
}

/** `npx ablate SUB …` lines of a template's shell steps. */
function ablateCommands(name: Template): string[] {
  const scripts =
    name === 'github-actions'
      ? githubSteps().flatMap((s) => (s.run ? [s.run] : []))
      : [...gitlabJob().script, ...(gitlabJob().after_script ?? [])];
  return scripts.flatMap((s) => [...s.matchAll(/npx ablate ([^\n;&|>]+)/g)].map((m) => m[1]!.trim()));
}

describe('the CI templates in docs/ci', () => {
  it('use only actions, expressions and rules this test maps', () => {
    const event = { baseRef: 'base', number: '7' };
    const known = ['actions/checkout', 'actions/setup-node', 'actions/cache/restore', 'actions/cache/save', 'actions/upload-artifact'];
    for (const step of githubSteps()) {
      if (step.uses) assert.ok(known.includes(step.uses.replace(/@.*$/, '')), `unmapped action ${step.uses}`);
      for (const text of [step.run ?? '', ...Object.values(step.with ?? {}).map(String), ...Object.values(step.env ?? {})])
        substitute(text, event, repoRoot);
      githubCondition(step.if, false, event, repoRoot);
    }
    const env = { CI_PIPELINE_SOURCE: 'merge_request_event', CI_COMMIT_BRANCH: 'main', CI_DEFAULT_BRANCH: 'main' };
    for (const rule of gitlabJob().rules ?? []) gitlabRule(rule.if, env);
    assert.match(String(gitlabJob().image), /^node:20/);
  });

  it("call only ablate commands and options the CLI has, and install with the README's command", () => {
    const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
    const install =
      /```sh\n(apt-get update && apt-get install -y [^\n]+ && npm ci) && npx ablate run pipelines\/quickstart\.yaml\n```/.exec(readme);
    assert.ok(install, "the README's first command");
    assert.ok(
      githubSteps().some((s) => s.run === install[1]!.replace(/apt-get /g, 'sudo apt-get ')),
      'GitHub: the same command with sudo',
    );
    assert.equal(gitlabJob().script[0], install[1], 'GitLab (root in the image): the same command');
    const help = new Map<string, string>();
    for (const name of TEMPLATES) {
      const commands = ablateCommands(name);
      assert.ok(commands.length >= 6, `${name}: ${commands.join(' | ')}`);
      for (const command of commands) {
        const sub = command.split(/\s+/)[0]!;
        if (!help.has(sub)) {
          const r = spawnSync(process.execPath, [cliPath, sub, '--help'], { encoding: 'utf8' });
          assert.equal(r.status, 0, `ablate ${sub} --help: ${r.stderr}`);
          help.set(sub, r.stdout);
        }
        for (const option of command.match(/(?<=\s)--[a-z-]+/g) ?? [])
          assert.ok(help.get(sub)!.includes(option), `${name}: ablate ${sub} has no option ${option} (${command})`);
      }
    }
  });

  for (const name of TEMPLATES)
    it(
      `${name}: from a fresh clone the steps regenerate the quickstart, verify it and comment; a second fresh clone with the saved cache restores every stage`,
      { skip: !enabled && 'set ABLATE_E2E=1 to run (CI does)' },
      (t) => {
        const root = mkdtempSync(join(tmpdir(), 'ablate-ci-'));
        const cacheRoot = join(root, 'ci-cache');
        const { origin, event, relocked } = makeOrigin(root);
        if (relocked)
          t.diagnostic(`${QUICKSTART_LOCK} was written on another class of machine: the pull request commits one of this machine's`);
        const run = name === 'github-actions' ? runGithub : runGitlab;

        const first = run(origin, event, cacheRoot);
        report(t, 'first', first);
        const firstOutput = assertSucceeded(first);
        assert.match(firstOutput, /quickstart\.yaml: the lockfile matches the pipeline and code \(21 stages\)/);
        assert.match(firstOutput, /quickstart: 21 ran, 0 up to date, 0 restored, 0 failed/);
        assert.match(firstOutput, /verify: \d+ files of 21 stages match/);
        assert.match(firstOutput, /verify --recompute: 2 identical bytes .*; passed/);
        const comment = readFileSync(join(first.out, 'comment.md'), 'utf8');
        assert.match(comment, /^### ablate diff: origin\/base \([0-9a-f]{7}\) → working tree\n/);
        const uploaded = join(first.out, 'uploads', ...(name === 'github-actions' ? ['ablate-reports'] : []));
        assert.match(readFileSync(join(uploaded, 'artifacts/quickstart/report/report.html'), 'utf8'), /<h1>ablate quickstart/);
        assert.ok(readdirSync(cacheRoot).length === 1, 'one cache entry saved');

        const second = run(origin, event, cacheRoot);
        report(t, 'second', second);
        const secondOutput = assertSucceeded(second);
        assert.match(secondOutput, /quickstart: 0 ran, 0 up to date, 21 restored, 0 failed/);
        assert.equal(readFileSync(join(second.out, 'comment.md'), 'utf8'), comment, 'the same comment');
        // What the steps left: the committed files untouched, and a workspace where a rerun does nothing.
        assert.equal(execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: second.work, encoding: 'utf8' }), '');
        const again = spawnSync('npx', ['ablate', 'run', 'pipelines/quickstart.yaml', '--plain'], { cwd: second.work, encoding: 'utf8' });
        assert.match(again.stdout, /quickstart: 0 ran, 21 up to date/);
        for (const r of [first, second]) rmSync(dirname(r.out), { recursive: true, force: true });
        rmSync(root, { recursive: true, force: true });
      },
    );
});
