import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { formatDiagnostic, PipelineError } from '../src/runner/diagnostics.js';
import { TempProject } from './helpers.js';

interface Case {
  readonly name: string;
  readonly yaml: string;
  /** `line:col` of the first diagnostic. */
  readonly at: string;
  readonly message: RegExp;
  readonly suggestion?: string;
  readonly overrides?: string[];
  readonly extraFiles?: Record<string, string>;
}

const emit = 'uses: ./stages/emit.ts';

const cases: Case[] = [
  {
    name: 'YAML syntax error',
    yaml: 'pipeline: p\nstages:\n  a: { uses: shell\n',
    at: '3:6',
    message: /YAML syntax error: this '\{' is never closed with '\}'/,
  },
  {
    name: 'an unclosed flow map, reported where it opens',
    yaml: 'pipeline: p\nstages:\n  a: { uses: shell, with: { cmd: "x" }\n  b: { uses: shell }\n',
    at: '3:6',
    message: /this '\{' is never closed/,
  },
  {
    name: 'duplicate stage',
    yaml: 'pipeline: p\nstages:\n  a: { uses: shell, with: { cmd: x } }\n  a: { uses: shell, with: { cmd: y } }\n',
    at: '4:3',
    message: /duplicate key/,
  },
  {
    name: 'duplicate param key',
    yaml: 'pipeline: p\nstages:\n  a:\n    uses: shell\n    with:\n      cmd: x\n      cmd: y\n',
    at: '7:7',
    message: /duplicate key/,
  },
  {
    name: 'missing pipeline name',
    yaml: 'stages:\n  a: { uses: shell, with: { cmd: x } }\n',
    at: '1:1',
    message: /missing required key 'pipeline'/,
  },
  { name: 'missing stages', yaml: 'pipeline: p\n', at: '1:1', message: /missing required key 'stages'/ },
  {
    name: 'misspelt top-level key',
    yaml: 'pipeline: p\nstages:\n  a: { uses: shell, with: { cmd: x } }\nparms: { n: 1 }\n',
    at: '4:1',
    message: /unknown key 'parms'/,
    suggestion: 'params',
  },
  {
    name: 'misspelt stage key',
    yaml: 'pipeline: p\nstages:\n  a:\n    uses: shell\n    wiht: { cmd: x }\n',
    at: '5:5',
    message: /unknown key 'wiht'.*expected one of: uses, description, in, with, matrix/,
    suggestion: 'with',
  },
  {
    name: 'uses is not a string',
    yaml: 'pipeline: p\nstages:\n  a:\n    uses: 42\n',
    at: '4:11',
    message: /expected string, got number 42/,
  },
  {
    name: 'unknown stage kind',
    yaml: 'pipeline: p\nstages:\n  a:\n    uses: shel\n    with: { cmd: x }\n',
    at: '4:11',
    message: /unknown stage kind 'shel'/,
    suggestion: 'shell',
  },
  {
    name: 'stage module not found',
    yaml: 'pipeline: p\nstages:\n  a:\n    uses: ./stages/nope.ts\n',
    at: '4:11',
    message: /stage module '.\/stages\/nope.ts' not found/,
  },
  {
    name: 'module without a stage kind',
    yaml: 'pipeline: p\nstages:\n  a:\n    uses: ./stages/helper.ts\n',
    at: '4:11',
    message: /default export is not a stage kind/,
  },
  {
    name: 'input refers to unknown stage',
    yaml: `pipeline: p\nstages:\n  gen: { ${emit}, with: { value: 1 } }\n  b:\n    uses: ./stages/parity.ts\n    in: { value: gne }\n`,
    at: '6:18',
    message: /unknown stage 'gne'/,
    suggestion: 'gen',
  },
  {
    name: 'malformed input reference',
    yaml: `pipeline: p\nstages:\n  gen: { ${emit}, with: { value: 1 } }\n  b:\n    uses: ./stages/parity.ts\n    in: { value: "gen[0]" }\n`,
    at: '6:18',
    message: /invalid value "gen\[0\]": expected an input reference/,
  },
  {
    name: 'unknown output',
    yaml: 'pipeline: p\nstages:\n  gen: { uses: shell, with: { cmd: x, outs: [nums.txt] } }\n  b:\n    uses: shell\n    in: { n: gen.num.txt }\n    with: { cmd: y }\n',
    at: '6:14',
    message: /stage 'gen' has no output 'num.txt'/,
    suggestion: 'nums.txt',
  },
  {
    name: 'cycle',
    yaml: 'pipeline: p\nstages:\n  a: { uses: shell, in: { x: b }, with: { cmd: x } }\n  b: { uses: shell, in: { x: c }, with: { cmd: x } }\n  c: { uses: shell, in: { x: a }, with: { cmd: x } }\n',
    at: '5:30',
    message: /dependency cycle: a → b → c → a/,
  },
  {
    name: 'self cycle',
    yaml: 'pipeline: p\nstages:\n  a: { uses: shell, in: { x: a }, with: { cmd: x } }\n',
    at: '3:30',
    message: /dependency cycle: a → a/,
  },
  {
    name: 'unknown param',
    yaml: `pipeline: p\nstages:\n  a:\n    ${emit}\n    with: { value: 1, factr: 2 }\n`,
    at: '5:23',
    message: /unknown param 'factr' of stage kind '.\/stages\/emit.ts'/,
    suggestion: 'factor',
  },
  {
    name: 'missing required param',
    yaml: 'pipeline: p\nstages:\n  a:\n    uses: shell\n    with: { outs: [x] }\n',
    at: '5:5',
    message: /missing required param 'cmd' of stage kind 'shell'/,
  },
  {
    name: 'param of the wrong type',
    yaml: `pipeline: p\nstages:\n  a:\n    ${emit}\n    with: { value: fast }\n`,
    at: '5:20',
    message: /expected number, got string "fast"/,
  },
  {
    name: 'unknown pipeline param in interpolation',
    yaml: `pipeline: p\nparams: { epochs: 3 }\nstages:\n  a:\n    ${emit}\n    with: { value: "\${params.epoch}" }\n`,
    at: '6:20',
    message: /unknown param 'epoch'.*define epochs/,
    suggestion: '${params.epochs}',
  },
  {
    name: 'unknown matrix key in interpolation',
    yaml: `pipeline: p\nstages:\n  a:\n    ${emit}\n    matrix: { beta: [1, 2] }\n    with: { value: "\${matrix.bta}" }\n`,
    at: '6:20',
    message: /unknown matrix key 'bta'/,
    suggestion: '${matrix.beta}',
  },
  {
    name: 'unknown interpolation namespace',
    yaml: `pipeline: p\nparams: { n: 1 }\nstages:\n  a:\n    ${emit}\n    with: { value: "\${param.n}" }\n`,
    at: '6:20',
    message: /unknown reference '\$\{param.n\}'/,
    suggestion: '${params.n}',
  },
  {
    name: 'matrix values that collide',
    yaml: `pipeline: p\nstages:\n  a:\n    ${emit}\n    matrix: { v: [1, "1"] }\n    with: { value: 1 }\n`,
    at: '5:22',
    message: /matrix value "1" of 'v' collides/,
  },
  {
    name: 'matrix key shadows an upstream key',
    yaml: `pipeline: p\nstages:\n  a:\n    ${emit}\n    matrix: { v: [1, 2] }\n    with: { value: "\${matrix.v}" }\n  b:\n    uses: ./stages/parity.ts\n    in: { value: a }\n    matrix: { v: [3] }\n`,
    at: '10:15',
    message: /matrix key 'v' collides with the same key inherited/,
  },
  {
    name: 'empty matrix axis',
    yaml: `pipeline: p\nstages:\n  a:\n    ${emit}\n    matrix: { v: [] }\n    with: { value: 1 }\n`,
    at: '5:18',
    message: /must NOT have fewer than 1 items/,
  },
  {
    name: 'invalid stage name',
    yaml: 'pipeline: p\nstages:\n  "my stage": { uses: shell, with: { cmd: x } }\n',
    at: '3:3',
    message: /invalid name 'my stage'/,
  },
  {
    name: 'invalid pipeline name',
    yaml: 'pipeline: "my pipe"\nstages:\n  a: { uses: shell, with: { cmd: x } }\n',
    at: '1:11',
    message: /invalid value "my pipe"/,
  },
  {
    name: 'gather input given a single reference',
    yaml: `pipeline: p\nstages:\n  a: { ${emit}, matrix: { v: [1, 2] }, with: { value: "\${matrix.v}" } }\n  s:\n    uses: ./stages/sum.ts\n    in: { runs: a }\n`,
    at: '6:17',
    message: /input 'runs' gathers every variant: write 'a\[\*\]'/,
  },
  {
    name: 'single input given a gather',
    yaml: `pipeline: p\nstages:\n  a: { ${emit}, matrix: { v: [1, 2] }, with: { value: "\${matrix.v}" } }\n  s:\n    uses: ./stages/parity.ts\n    in: { value: "a[*]" }\n`,
    at: '6:18',
    message: /takes one variant, not a gather/,
  },
  {
    name: 'selection on an unknown matrix key',
    yaml: `pipeline: p\nstages:\n  a: { ${emit}, matrix: { beta: [1, 2] }, with: { value: 1 } }\n  s:\n    uses: ./stages/parity.ts\n    in: { value: "a[bta=1]" }\n`,
    at: '6:18',
    message: /stage 'a' has no matrix key 'bta' to select on \(its keys: beta\)/,
    suggestion: 'beta',
  },
  {
    name: 'selection that matches no variant',
    yaml: `pipeline: p\nstages:\n  a: { ${emit}, matrix: { beta: [1, 2] }, with: { value: 1 } }\n  s:\n    uses: ./stages/parity.ts\n    in: { value: "a[beta=4]" }\n`,
    at: '6:18',
    message: /no variant of 'a' matches a\[beta=4\]; its variants: a\[beta=1\], a\[beta=2\]/,
  },
  {
    name: 'undeclared input name',
    yaml: `pipeline: p\nstages:\n  a: { ${emit}, with: { value: 1 } }\n  s:\n    uses: ./stages/parity.ts\n    in: { vlaue: a }\n`,
    at: '6:11',
    message: /has no input 'vlaue'/,
    suggestion: 'value',
  },
  {
    name: 'missing required input',
    yaml: 'pipeline: p\nstages:\n  s:\n    uses: ./stages/parity.ts\n',
    at: '4:5',
    message: /needs input 'value'/,
  },
  {
    name: '--set of an unknown param',
    yaml: 'pipeline: p\nparams: { epochs: 1 }\nstages:\n  a: { uses: shell, with: { cmd: x } }\n',
    at: '2:1',
    message: /--set epoch=5: the pipeline has no param 'epoch'/,
    suggestion: 'epochs',
    overrides: ['epoch=5'],
  },
];

describe('malformed pipelines: every error at file:line:col', () => {
  const project = new TempProject();
  for (const c of cases) {
    it(c.name, async () => {
      const file = `pipelines/${c.name.replace(/\W+/g, '-')}.yaml`;
      project.write(file, c.yaml);
      await assert.rejects(project.plan(file, c.overrides), (error: unknown) => {
        assert.ok(error instanceof PipelineError, `expected PipelineError, got ${String(error)}`);
        const first = error.diagnostics[0]!;
        const text = formatDiagnostic(first);
        assert.equal(`${first.position?.line}:${first.position?.col}`, c.at, text);
        assert.match(first.message, c.message, text);
        assert.ok(text.startsWith(`${project.path(file)}:${c.at}: error: `), text);
        if (c.suggestion) assert.equal(first.suggestion, c.suggestion, text);
        return true;
      });
    });
  }

  it('reports every independent error at once, in file order', async () => {
    project.write(
      'pipelines/many.yaml',
      `pipeline: p\nstages:\n  a:\n    uses: shel\n  b:\n    ${emit}\n    with: { valu: 1 }\n  c:\n    uses: ./stages/parity.ts\n    in: { value: zz }\n`,
    );
    await assert.rejects(project.plan('pipelines/many.yaml'), (error: PipelineError) => {
      assert.deepEqual(
        error.diagnostics.map((d) => `${d.position?.line}:${d.position?.col}`),
        // The misspelt `valu` is one error (its did-you-mean), not also "missing required 'value'".
        ['4:11', '7:13', '10:18'],
        error.message,
      );
      return true;
    });
  });

  it('a misspelt ${matrix.*} is one error at its use, with no knock-on type error', async () => {
    project.write(
      'pipelines/mx.yaml',
      `pipeline: p\nstages:\n  a:\n    ${emit}\n    matrix: { beta: [1, 2] }\n    with: { value: "\${matrix.bta}" }\n`,
    );
    await assert.rejects(project.plan('pipelines/mx.yaml'), (error: PipelineError) => {
      assert.deepEqual(
        error.diagnostics.map((d) => [`${d.position?.line}:${d.position?.col}`, d.suggestion]),
        [['6:20', '${matrix.beta}']],
        error.message,
      );
      return true;
    });
  });

  it('the CLI exits 2 with a code frame, and writes nothing', () => {
    const p = new TempProject({
      'pipelines/bad.yaml': 'pipeline: p\nstages:\n  a:\n    uses: shel\n    with: { cmd: "echo > $ABLATE_OUT/x", outs: [x] }\n',
    });
    const r = p.cli(['run', 'pipelines/bad.yaml']);
    assert.equal(r.status, 2);
    assert.match(
      r.stderr,
      /pipelines\/bad\.yaml:4:11: error: unknown stage kind 'shel'; built-in kinds: shell, mnist, [^;]+; did you mean 'shell'\? \(at stages\.a\.uses\)/,
    );
    assert.match(r.stderr, /4 \|     uses: shel\n\s+\^/);
    assert.match(r.stderr, /nothing was run/);
    assert.ok(!existsSync(p.path('.ablate')), '.ablate must not be created');
    assert.ok(!existsSync(p.path('artifacts')), 'artifacts must not be created');
    assert.ok(!existsSync(p.path('pipelines/bad.lock.json')), 'no lockfile');
  });
});
