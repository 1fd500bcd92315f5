import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { diffMarkdown, markdownTable } from '../src/commands/diff-markdown.js';
import type { LockfileDiff } from '../src/commands/diff.js';
import { diffResults } from '../src/runner/results-diff.js';
import type { InstanceResult } from '../src/runner/results.js';
import { describe, it, before } from 'node:test';
import { aggregateReplicates, summarize, welch, type MetricRow } from '../src/core/stats.js';
import { inChromium, TempProject } from './helpers.js';

/** |a − b| within `rel` of b's magnitude. */
function close(actual: number | null | undefined, expected: number, rel = 1e-8): void {
  assert.ok(typeof actual === 'number', `expected a number near ${expected}, got ${String(actual)}`);
  assert.ok(Math.abs(actual - expected) <= rel * Math.abs(expected), `${actual} ≠ ${expected}`);
}

// Reference values printed by scipy 1.17.1 (numpy std(ddof=1), scipy.stats.t.ppf, ttest_ind(equal_var=False)).
describe('replicate statistics against scipy', () => {
  it('mean, sample std and the Student-t 95 % half-width', () => {
    const a = summarize([1, 2, 3, 4, 5]);
    assert.equal(a.n, 5);
    close(a.mean, 3);
    close(a.std, 1.5811388300841898);
    close(a.ci95, 1.9632431614775572);
    const b = summarize([150.1, 150.4, 149.8]);
    close(b.mean, 150.1);
    close(b.std, 0.29999999999999716, 1e-6);
    close(b.ci95, 0.7452413135250919, 1e-6);
  });

  it('one value has a mean and nothing else', () => {
    assert.deepEqual(summarize([4.5]), { n: 1, mean: 4.5, std: null, ci95: null });
    assert.throws(() => summarize([]), /at least one/);
  });

  it("Welch's difference, its interval and p-value", () => {
    const d = welch([2, 4, 6, 8, 10], [1, 2, 3, 4, 5])!;
    close(d.diff, 3);
    close(d.df, 5.882352941176471);
    close(d.ci95, 3.887741643736975, 1e-7);
    close(d.p, 0.10753119493062728, 1e-7);
    const e = welch([103.1, 104.0, 102.2, 103.5], [101.2, 99.8, 100.5])!;
    close(e.diff, 2.700000000000003);
    close(e.df, 4.672354948805448);
    close(e.ci95, 1.4580248049161229, 1e-7);
    close(e.p, 0.0055335016962781945, 1e-6);
  });

  it('is undefined without two values a side or without any spread', () => {
    assert.equal(welch([1, 2], [3]), null);
    assert.equal(welch([2, 2, 2], [2, 2]), null);
  });

  it('groups by the keys that are not replicates, and finds the baseline', () => {
    const rows: MetricRow[] = [
      { id: 'e[beta=1,seed=1]', variant: { beta: 1, seed: 1 }, metrics: { kl: 101.2 } },
      { id: 'e[beta=4,seed=1]', variant: { beta: 4, seed: 1 }, metrics: { kl: 103.1, bce: 9 } },
      { id: 'e[beta=1,seed=2]', variant: { beta: 1, seed: 2 }, metrics: { kl: 99.8 } },
      { id: 'e[beta=4,seed=2]', variant: { beta: 4, seed: 2 }, metrics: { kl: 104.0 } },
      { id: 'e[beta=1,seed=3]', variant: { beta: 1, seed: 3 }, metrics: { kl: 100.5 } },
      { id: 'e[beta=4,seed=3]', variant: { beta: 4, seed: 3 }, metrics: { kl: 102.2 } },
      { id: 'e[beta=4,seed=4]', variant: { beta: 4, seed: 4 }, metrics: { kl: 103.5 } },
    ];
    const groups = aggregateReplicates(rows, ['seed'], ['kl', 'bce', 'mse'], { beta: '1' });
    assert.deepEqual(
      groups.map((g) => [g.variant, g.runs.length]),
      [
        [{ beta: 1 }, 3],
        [{ beta: 4 }, 4],
      ],
    );
    assert.equal(groups[0]!.vsBaseline, undefined, 'the baseline is not compared with itself');
    close(groups[1]!.vsBaseline!.kl!.p, 0.0055335016962781945, 1e-6);
    assert.deepEqual(groups[1]!.summaries.bce, { n: 1, mean: 9, std: null, ci95: null }, 'only the runs that have the metric');
    assert.equal(groups[0]!.summaries.mse, null);
    assert.throws(() => aggregateReplicates(rows, ['seed'], ['kl'], { beta: 2 }), /matches no group; the groups are \{beta=1\} \{beta=4\}/);
    assert.throws(() => aggregateReplicates(rows, ['run'], ['kl']), /e\[beta=1,seed=1\] has no matrix key 'run'/);
  });
});

// Metrics a shell stage writes for (beta, seed): the Welch example above, so the table is checkable by hand.
const VALUES: Record<string, number> = { '1-1': 101.2, '1-2': 99.8, '1-3': 100.5, '4-1': 103.1, '4-2': 104.0, '4-3': 102.2 };
const SEEDS_PIPELINE = `pipeline: seeds
replicates: [seed]
stages:
  fit:
    uses: shell
    matrix: { beta: [1, 4], seed: [1, 2, 3] }
    with:
      cmd: >-
        case "\${matrix.beta}-\${matrix.seed}" in
        ${Object.entries(VALUES)
          .map(([k, v]) => `${k}) kl=${v} ;;`)
          .join(' ')}
        esac;
        printf '{"kl": %s, "bce": %s}' "$kl" "\${matrix.seed}" > "$ABLATE_OUT/metrics.json"
      outs: [metrics.json]
      metrics: metrics.json
  table: { uses: compare-metrics, in: { runs: "fit[*]" }, with: { over: seed, baseline: { beta: 1 }, columns: [kl, bce] } }
  plain: { uses: compare-metrics, in: { runs: "fit[*]" }, with: { columns: [kl] } }
  chart: { uses: variant-chart, in: { table: table }, with: { x: beta, metrics: [kl, bce], mark: bar } }
`;

describe('compare-metrics over seeds, and a chart with CI error bars', () => {
  const p = new TempProject({ 'pipelines/seeds.yaml': SEEDS_PIPELINE });
  const art = (rel: string) => readFileSync(p.path(`artifacts/seeds/${rel}`), 'utf8');
  before(async () => {
    const result = await p.run('pipelines/seeds.yaml');
    assert.deepEqual(result.failed, [], JSON.stringify(result.events.filter((e) => e.type === 'failed')));
  });

  it('writes one row per configuration with mean, std, ci95, n and the difference from the baseline', () => {
    const table = JSON.parse(art('table/comparison.json')) as { columns: string[]; over: string[]; rows: Record<string, number | null>[] };
    assert.deepEqual(table.over, ['seed']);
    assert.deepEqual(table.columns.slice(0, 5), ['beta', 'n', 'kl_mean', 'kl_std', 'kl_ci95']);
    const [base, four] = table.rows;
    assert.equal(base!.beta, 1);
    assert.equal(base!.n, 3);
    close(base!.kl_mean, 100.5);
    close(base!.kl_std, 0.7, 1e-9);
    assert.equal(base!.kl_diff, null);
    close(four!.kl_mean, 103.1);
    const expected = welch([103.1, 104.0, 102.2], [101.2, 99.8, 100.5])!;
    close(four!.kl_diff, expected.diff);
    close(four!.kl_p, expected.p);
    close(four!.bce_mean, 2, 1e-12);
    close(four!.bce_p, 1, 1e-12); // the same values [1, 2, 3] in both groups: no difference at all
  });

  it('keeps the per-run table beside it, and a plain table without over is unchanged', () => {
    assert.equal(art('table/runs.csv').trim().split('\n').length, 7);
    assert.match(art('table/comparison.csv'), /^beta,n,kl_mean,kl_std,kl_ci95,kl_diff,kl_diff_ci95,kl_p,bce_mean/);
    assert.equal(art('plain/comparison.csv').split('\n')[0], 'id,beta,seed,kl');
  });

  it('draws error bars from the aggregated table', () => {
    const spec = JSON.parse(art('chart/chart.vl.json')) as { spec: { layer: { mark: { type: string } }[] }; title: string };
    assert.deepEqual(
      spec.spec.layer.map((l) => l.mark.type),
      ['bar', 'errorbar', 'text'],
    );
    assert.match(spec.title, /mean ± 95 % CI/);
    assert.match(art('chart/chart.svg'), /103\.1 ± /, 'the bar carries its value and interval');
  });
});

const VIEW_PIPELINE = `pipeline: d
params: { offset: 0 }
replicates: [seed]
stages:
  fit:
    uses: shell
    matrix: { beta: [1, 4], seed: [1, 2, 3] }
    with:
      cmd: >-
        awk "BEGIN { printf \\"{\\\\\\"kl\\\\\\": %.4f, \\\\\\"bce\\\\\\": %d}\\", \${matrix.beta} * 10 + \${matrix.seed} / 7 + \${params.offset}, \${matrix.seed} }" > "$ABLATE_OUT/metrics.json"
      outs: [metrics.json]
      metrics: metrics.json
  sum: { uses: shell, in: { parts: "fit[*]" }, with: { cmd: 'for d in $ABLATE_IN_PARTS; do cat $d/metrics.json; done > $ABLATE_OUT/all.txt', outs: [all.txt] } }
`;

function git(p: TempProject, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], { cwd: p.root, encoding: 'utf8' });
}

describe('show, diff and log: the results of a pipeline, across runs and git revisions', () => {
  const p = new TempProject({ 'pipelines/d.yaml': VIEW_PIPELINE });
  before(() => {
    git(p, 'init', '-q');
    const first = p.cli(['run', 'pipelines/d.yaml']);
    assert.equal(first.status, 0, first.stdout + first.stderr);
    git(p, 'add', '-A');
    git(p, 'commit', '-qm', 'first results');
    p.write('pipelines/d.yaml', VIEW_PIPELINE.replace('offset: 0', 'offset: 0.5'));
    assert.equal(p.cli(['run', 'pipelines/d.yaml']).status, 0);
  });

  it('show: a table per stage with metrics, the replicate summary, the rest named', () => {
    const r = p.cli(['show', 'pipelines/d.yaml']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.equal(lines[0], 'd · pipelines/d.lock.json · 7 instances');
    assert.ok(lines.includes('beta  seed     kl  bce'), r.stdout);
    assert.ok(lines.includes('   4     3  40.93    3'), 'four significant digits, right-aligned');
    assert.ok(lines.includes('fit: mean ± 95 % CI over seed'));
    // kl for β = 1: 10.5 + s/7 for s = 1, 2, 3 → mean 10.786, sd 1/7, ci95 = t(0.975, 2)·(1/7)/√3.
    const ci = (4.302652729749464 * (1 / 7)) / Math.sqrt(3);
    assert.ok(lines.includes(`   1  3  10.79 ± ${ci.toPrecision(4)}  2 ± 2.484`), r.stdout);
    assert.match(r.stdout, /without metrics: sum\n/);
    const sorted = p.cli(['show', 'pipelines/d.yaml', '--sort', '-kl']).stdout.split('\n');
    assert.match(sorted[4]!, /^ {3}4 {5}3 {2}40\.93/, 'descending by kl');
  });

  it('show --json and --csv carry every instance with full precision', () => {
    const json = JSON.parse(p.cli(['show', 'pipelines/d.lock.json', '--json']).stdout) as {
      replicates: string[];
      instances: { id: string; variant: Record<string, unknown>; params: Record<string, unknown>; metrics: Record<string, number> }[];
      aggregates: {
        stage: string;
        groups: { variant: Record<string, unknown>; summaries: Record<string, { mean: number; ci95: number }> }[];
      }[];
    };
    assert.deepEqual(json.replicates, ['seed']);
    const first = json.instances.find((i) => i.id === 'fit[beta=1,seed=1]')!;
    assert.deepEqual(first.variant, { beta: 1, seed: 1 });
    assert.deepEqual(first.params, {}, 'params that vary only with the matrix are the variant');
    assert.equal(first.metrics.kl, 10.6429);
    close(json.aggregates[0]!.groups[1]!.summaries.kl!.mean, 40.5 + 2 / 7, 1e-4);
    const csv = p.cli(['show', 'pipelines/d.yaml', '--csv']).stdout.split('\n');
    assert.equal(csv[0], 'id,stage,beta,seed,kl,bce');
    assert.equal(csv[1], '"fit[beta=1,seed=1]",fit,1,1,10.6429,1', 'an id with a comma is quoted (RFC 4180)');
  });

  it('diff: HEAD against the working tree, with old, new, change and relative change', () => {
    const r = p.cli(['diff']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ablate diff: HEAD \([0-9a-f]{7}\) → working tree\n/);
    assert.match(r.stdout, /\n {2}fit\[beta=1,seed=1\] +param params\.offset +0 +0\.5\n +kl +10\.14 +10\.64 +0\.5000 +\+4\.930 %\n/);
    assert.match(r.stdout, /\n {2}sum +outputs changed \(no metric did\)\n/);
    const json = JSON.parse(p.cli(['diff', '--json']).stdout) as {
      lockfiles: {
        lockfile: string;
        instances: {
          id: string;
          status: string;
          metrics: { metric: string; old: number; new: number; change: number; relative: number }[];
        }[];
      }[];
    };
    const kl = json.lockfiles[0]!.instances.find((i) => i.id === 'fit[beta=4,seed=2]')!.metrics.find((m) => m.metric === 'kl')!;
    close(kl.change, 0.5, 1e-9);
    close(kl.relative, 0.5 / kl.old, 1e-12);
  });

  it('diff between two revisions reads the lockfiles with git, without a checkout', () => {
    git(p, 'commit', '-qam', 'offset 0.5');
    const r = p.cli(['diff', 'HEAD~1', 'HEAD', 'pipelines/d.yaml']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /HEAD~1 \([0-9a-f]{7}\) → HEAD \([0-9a-f]{7}\)/);
    assert.match(r.stdout, /\n +kl +40\.43 +40\.93 +0\.5000 +\+1\.237 %\n/);
    assert.match(p.cli(['diff', 'HEAD']).stdout, /no change \(7 instances\)/);
    const bad = p.cli(['diff', 'no-such-rev']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /'no-such-rev' is neither a file nor a git revision/);
  });

  it('diff --md: a pull-request comment; a replicated stage as mean ± 95 % CI per configuration, saying whether the change is outside it', () => {
    const r = p.cli(['diff', 'HEAD~1', 'HEAD', '--md']);
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.match(lines[0]!, /^### ablate diff: HEAD~1 \([0-9a-f]{7}\) → HEAD \([0-9a-f]{7}\)$/);
    assert.ok(lines.includes('**`pipelines/d.lock.json`**: 7 of 7 instances changed'), r.stdout);
    assert.ok(lines.includes('| `sum` | outputs changed (no metric did) |  |  |  |  |'), r.stdout);
    assert.ok(lines.includes('- fit: param params.offset 0 → 0.5'), r.stdout);
    // kl at β = 1: 10 + s/7 (s = 1, 2, 3, written to 4 decimals) before, 0.5 more after; equal
    // spreads, so Welch's ν = 4 and se = √(2·sd²/3).
    const kl = [10.1429, 10.2857, 10.4286];
    const mean = (kl[0]! + kl[1]! + kl[2]!) / 3;
    const sd = Math.sqrt(kl.reduce((a, v) => a + (v - mean) ** 2, 0) / 2);
    const ci = (4.302652729749464 * sd) / Math.sqrt(3);
    const welchCi = 2.7764451051977987 * Math.sqrt((2 * sd ** 2) / 3);
    const row = lines.find((l) => l.startsWith('| fit | beta=1 | kl |'));
    assert.equal(
      row,
      `| fit | beta=1 | kl | 10.29 ± ${ci.toPrecision(4)} (3) | 10.79 ± ${ci.toPrecision(4)} (3) | +0.5000 | +4.861 % | +0.5000 ± ${welchCi.toPrecision(4)} | **yes** |`,
    );
    assert.ok(!lines.some((l) => l.includes('| bce |')), 'unchanged metrics are left out');
    assert.match(p.cli(['diff', 'HEAD', '--md']).stdout, /No lockfile changed \(`pipelines\/d\.lock\.json`\)\./);
  });

  it('diff --html writes one offline page with both revisions side by side, its charts live in Chromium', async (t) => {
    const r = p.cli(['diff', 'HEAD~1', 'HEAD', '--html', 'diff.html']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'wrote diff.html\n', 'shell stages have no training curves, so nothing is missing');
    const html = p.read('diff.html');
    assert.doesNotMatch(html, /(src|href)="https?:/);
    const spec = JSON.parse(/<script type="application\/json" id="metrics-0-spec">(.*?)<\/script>/s.exec(html)![1]!) as {
      data: { values: { instance: string; metric: string; revision: string; value: number }[] };
    };
    const kl = spec.data.values.filter((v) => v.instance === 'fit[beta=4,seed=3]' && v.metric === 'kl').map((v) => v.value);
    assert.deepEqual(kl, [40.4286, 40.9286]);
    await inChromium(t, async (page, errors) => {
      await page.goto(`file://${p.path('diff.html')}`);
      await page.waitForFunction(() => [...document.querySelectorAll('.chart')].every((c) => c.classList.contains('live')), null, {
        timeout: 30_000,
      });
      assert.equal((await page.$$('.chart.live svg.marks')).length, (await page.$$('.chart')).length, 'each chart drew its marks');
      assert.deepEqual(errors, []);
    });
  });

  it('log: a line per run with its commit and a dirty mark; --metric follows a metric', () => {
    const r = p.cli(['log', 'pipelines/d.yaml', '--metric', 'kl']);
    assert.equal(r.status, 0, r.stderr);
    const rows = r.stdout.split('\n').filter((l) => /^\d{4}-\d\d-\d\d /.test(l));
    assert.equal(rows.length, 2);
    assert.match(rows[0]!, /\(no git\) +7 +0 +0 +0 /, 'the first run came before the first commit');
    assert.match(rows[1]!, /[0-9a-f]{7}\* +7 +0 +0 +0 /, 'all reran (sum reads the changed metrics); the tree was dirty');
    assert.match(r.stdout, /fit\[beta=1,seed=1\] kl/);
    assert.match(rows[1]!, /10\.64/);
    const json = JSON.parse(p.cli(['log', 'pipelines/d.yaml', '--json', '-n', '1']).stdout) as {
      ran: string[];
      instances: Record<string, string>;
    }[];
    assert.equal(json.length, 1);
    assert.equal(Object.keys(json[0]!.instances).length, 7);
  });
});

describe('diff --md tables', () => {
  const result = (stage: string, variant: Record<string, number>, metrics: Record<string, number>): InstanceResult => {
    const id = `${stage}[${Object.entries(variant)
      .map(([k, v]) => `${k}=${v}`)
      .join(',')}]`;
    const digest = JSON.stringify(metrics);
    return {
      id,
      stage,
      kind: 'shell',
      variant,
      params: {},
      allParams: {},
      metrics,
      outputDigest: digest,
      digest,
      warnings: [],
      outputs: {},
    };
  };
  const lockfile = (before: InstanceResult[], after: InstanceResult[]): LockfileDiff => ({
    lockfile: 'pipelines/x.lock.json',
    instances: diffResults(before, after),
    before,
    after,
  });
  const a = { label: 'main (1111111)', commit: '1'.repeat(40) };
  const b = { label: 'HEAD (2222222)', commit: '2'.repeat(40) };

  it('a move within seed noise is not outside the CI; one replicate per side cannot say', () => {
    const before = [1, 2, 3].map((seed) => result('train', { beta: 1, seed }, { loss: [100, 104, 96][seed - 1]! }));
    const after = [1, 2, 3].map((seed) => result('train', { beta: 1, seed }, { loss: [101, 103, 98][seed - 1]! }));
    const md = diffMarkdown(a, b, [lockfile(before, after)], () => ['seed']);
    const row = md.split('\n').find((l) => l.startsWith('| train | beta=1 | loss |'))!;
    const cells = row.split(' | ');
    assert.equal(cells[5], '+0.6667', 'mean 100 → 100.67');
    assert.equal(cells.at(-1), 'no |');
    assert.match(
      md,
      /\| stage \| configuration \| metric \| main \(1111111\) \| HEAD \(2222222\) \| change \| relative \| 95 % CI of change \| outside \|\n\| --- \| --- \| --- \|/,
    );

    const one = diffMarkdown(a, b, [lockfile(before.slice(0, 1), after.slice(0, 1))], () => ['seed']);
    assert.match(one, /\| train \| beta=1 \| loss \| 100 \(1\) \| 101 \(1\) \| \+1 \| \+1 % \|  \| n\/a \(needs 2 per side\) \|/);
  });

  it('without replicates: one row per changed metric of each changed instance, numbers right-aligned, pipes escaped', () => {
    const before = [result('eval', { d: 2 }, { elbo: 120, kl: 5 })];
    const after = [result('eval', { d: 2 }, { elbo: 110, kl: 5 }), result('eval', { d: 4 }, { elbo: 100, kl: 7 })];
    const md = diffMarkdown(a, b, [lockfile(before, after)], () => []);
    assert.match(md, /\*\*`pipelines\/x\.lock\.json`\*\*: 2 of 2 instances changed/);
    assert.match(md, /\| `eval\[d=2\]` \| elbo \| 120 \| 110 \| -10 \| -8\.333 % \|\n/);
    assert.match(md, /\| `eval\[d=4\]` \| added \|/);
    assert.doesNotMatch(md, /\| `eval\[d=2\]` \| kl/, 'kl did not change');
    assert.equal(markdownTable(['a', 'n'], [['x|y', '1']]), '| a | n |\n| --- | ---: |\n| x\\|y | 1 |');
  });
});
