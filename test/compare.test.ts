import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it, before } from 'node:test';
import { aggregateReplicates, summarize, welch, type MetricRow } from '../src/core/stats.js';
import { TempProject } from './helpers.js';

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
