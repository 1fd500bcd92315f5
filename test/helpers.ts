import { spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { LocalProcessPool } from '../src/runner/executor/local-pool.js';
import type { Reporter, RunEvent } from '../src/runner/logging/events.js';
import { loadPipeline, type Plan } from '../src/runner/plan.js';
import { runPlan, type RunOptions, type RunSummary } from '../src/runner/scheduler.js';
import { workspaceAt } from '../src/runner/workspace.js';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export const cliPath = join(repoRoot, 'bin', 'ablate.js');

/**
 * Every TempProject of this test file, removed when its process exits: each `npm test` made
 * ~200 of them, and a machine that runs the tests all day filled its /tmp (where directory
 * operations then got slower). ABLATE_KEEP_TEST_DIRS=1 keeps them to look at after a failure.
 */
const tempRoots: string[] = [];
process.on('exit', () => {
  if (process.env.ABLATE_KEEP_TEST_DIRS) return;
  for (const root of tempRoots) removeTree(root);
});

/** rm -rf that also gets through directories a test made read-only; a failure here never fails the tests. */
function removeTree(root: string): void {
  for (const attempt of [0, 1]) {
    try {
      rmSync(root, { recursive: true, force: true });
      return;
    } catch {
      if (attempt === 0) spawnSync('chmod', ['-R', 'u+rwX', root]);
    }
  }
}

/** ModelConfig's image and depth for the seeds' square grey images (28 or 32 a side, or tiny ones in tests). */
export function greySquare(side: number) {
  return { image: { rows: side, cols: side, channels: 1 }, depth: 2 } as const;
}

/** Far beyond the slowest command the tests run (a reduced ablation in CI takes about a minute). */
const CLI_HANG_MS = 15 * 60_000;

/** A throwaway project: package.json marks its root; the toy stages sit in pipelines/stages/. */
export class TempProject {
  readonly root = mkdtempSync(join(tmpdir(), 'ablate-test-'));

  constructor(files: Record<string, string> = {}) {
    tempRoots.push(this.root);
    writeFileSync(join(this.root, 'package.json'), '{"name":"tmp-project","private":true}\n');
    cpSync(join(repoRoot, 'test', 'fixtures', 'stages'), join(this.root, 'pipelines', 'stages'), { recursive: true });
    for (const [path, text] of Object.entries(files)) this.write(path, text);
  }

  path(rel: string): string {
    return join(this.root, rel);
  }

  write(rel: string, text: string): void {
    mkdirSync(dirname(this.path(rel)), { recursive: true });
    writeFileSync(this.path(rel), text);
  }

  read(rel: string): string {
    return readFileSync(this.path(rel), 'utf8');
  }

  async plan(rel: string, overrides: string[] = []): Promise<Plan> {
    return loadPipeline(this.path(rel), { overrides });
  }

  /** Runs through the library API with a real process pool; returns the summary and every event. */
  async run(rel: string, options: RunOptions & { overrides?: string[]; jobs?: number } = {}): Promise<RunSummary & { events: RunEvent[] }> {
    const plan = await this.plan(rel, options.overrides);
    const events: RunEvent[] = [];
    const reporter: Reporter = { event: (e) => events.push(e), close: async () => undefined };
    const pool = new LocalProcessPool(options.jobs ?? 2);
    try {
      const summary = await runPlan(plan, workspaceAt(this.root), pool, reporter, options);
      return { ...summary, events };
    } finally {
      await pool.close();
    }
  }

  /**
   * The CLI as a user runs it (compiled, from bin/), in this project. A command that has not
   * ended after CLI_HANG_MS is killed and reported, so a hang fails its test instead of
   * blocking the whole suite (a synchronous wait leaves the test runner no way to time out).
   */
  cli(args: string[], env: NodeJS.ProcessEnv = {}): { status: number; stdout: string; stderr: string } {
    const r = spawnSync(process.execPath, [cliPath, ...args], {
      cwd: this.root,
      encoding: 'utf8',
      env: { ...process.env, CI: '1', ...env },
      timeout: CLI_HANG_MS,
      killSignal: 'SIGKILL',
    });
    const hung = r.error && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT';
    const note = hung
      ? `\n[test helper: \`ablate ${args.join(' ')}\` had not ended after ${CLI_HANG_MS / 60_000} min and was killed]\n`
      : '';
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr + note };
  }

  /** The CLI started in the background. */
  spawnCli(args: string[]) {
    return spawn(process.execPath, [cliPath, ...args], {
      cwd: this.root,
      env: { ...process.env, CI: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
}

export function ids(events: readonly RunEvent[], type: RunEvent['type']): string[] {
  return events
    .filter((e) => e.type === type)
    .map((e) => ('id' in e ? e.id : ''))
    .sort();
}

/** An IDX file: magic 0x0000, type 0x08, dims, sizes, data. */
export function idx(shape: number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * shape.length);
  header[2] = 0x08;
  header[3] = shape.length;
  shape.forEach((s, i) => header.writeUInt32BE(s, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(data)]);
}

/**
 * Opens Debian's Chromium headless and offline-minded, gives `use` a page whose console
 * errors and page errors are collected, and closes it. Skips the test where Chromium is
 * not installed, except in CI, which must have it.
 */
export async function inChromium(t: TestContext, use: (page: Page, errors: string[]) => Promise<void>): Promise<void> {
  const chromium = '/usr/bin/chromium';
  if (!existsSync(chromium)) {
    if (process.env.CI) throw new Error('CI must install Debian chromium (.ci/run does)');
    t.skip('Debian chromium is not installed (apt-get install -y chromium)');
    return;
  }
  const { chromium: launcher } = await import('playwright-core');
  const browser = await launcher.launch({
    executablePath: chromium,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
    const errors: string[] = [];
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    page.on('pageerror', (e) => errors.push(e.message));
    await use(page, errors);
  } finally {
    await browser.close();
  }
}

/** The Bernoulli loss of one pixel with logit l and target x, in JavaScript's doubles: max(l, 0) − l·x + log(1 + e^−|l|). */
export const bernoulliTerm = (l: number, x: number): number => Math.max(l, 0) - l * x + Math.log1p(Math.exp(-Math.abs(l)));

/** Its slope in l, in doubles: σ(l) − x. */
export const bernoulliSlope = (l: number, x: number): number => 1 / (1 + Math.exp(-l)) - x;
