import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseDocument } from 'yaml';
import { binaryTreePipeline } from '../bench/generate.js';
import { readYamlSubset } from '../src/runner/yaml-subset.js';
import { repoRoot } from './helpers.js';

/** What yaml makes of a text, as YamlSource asks it: the value, or undefined when it reports anything. */
function yamlValue(text: string): { value: unknown } | undefined {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length || doc.warnings.length) return undefined;
  return { value: doc.toJS({ maxAliasCount: 1000 }) };
}

/** The reader's promise: yaml's value, or undefined. Never a value yaml would not give. */
function assertAgrees(text: string): boolean {
  const quick = readYamlSubset(text);
  if (quick === undefined) return false;
  const slow = yamlValue(text);
  assert.ok(slow, `read a value where yaml reports a problem:\n${text}`);
  assert.deepStrictEqual(quick, slow.value, `a different value than yaml's for:\n${text}`);
  return true;
}

const pipelines = readdirSync(join(repoRoot, 'pipelines'))
  .filter((f) => f.endsWith('.yaml'))
  .map((f) => readFileSync(join(repoRoot, 'pipelines', f), 'utf8'));

/** Every construct the reader takes, and neighbours of each that it must leave to yaml or read alike. */
const FEATURES = `# a comment line
pipeline: features   # a trailing comment
description: |
  kept
  lines # not a comment
summary: >
  folded into
  one line
empty:
nothing: ~
nulls: [null, Null, NULL, ~]
bools: [true, True, TRUE, false, False, FALSE, yes, no, on, off]
ints: [0, -1, +2, 007, 0o17, 0x1F, 12345678901234567890, 1_000]
floats: [1.5, -.5, 1., 1e3, -2.5E-3, .inf, -.Inf, .NaN, .nan, 1e, 0.1.2]
strings: ['single ''quoted''', "double # not a comment", plain words, it's, a "b", -dash, ?q, x-y]
nested:
  deeper:
    deepest: { a: 1, b: [x, [y, {}], []], c: {} }
  list:
    - one
    - 'two'
    - [three]
    - { four: 4 }
    -   spaced
cmd: echo $ABLATE_OUT/o.txt > x && cat a#b
url: http://example.org:8080/x
dots: ...
dashes: ---
quoted_trail: 'q'   # after a quoted value
`;

const SPECIAL = [
  ':',
  ': ',
  ' ',
  '#',
  ' #',
  "'",
  '"',
  '-',
  '- ',
  '{',
  '}',
  '[',
  ']',
  ',',
  '\n',
  '\n  ',
  '  ',
  '|',
  '>',
  '|-',
  '>+',
  '&a ',
  '*a',
  '!',
  '!!str ',
  '?',
  '? ',
  '~',
  '0x1F',
  '1e3',
  '.inf',
  'True',
  'null',
  '\\',
  '%',
  '@',
  '`',
  '\t',
  '\r',
  '---\n',
  '...',
  '<<: ',
  '__proto__: ',
  'k: ',
  'k: v\n',
  "''",
  '""',
  '\n\n',
  '1: ',
];

/** A small deterministic generator, so a failure names a mutation that reproduces. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function mutate(text: string, random: () => number): string {
  const edits = 1 + Math.floor(random() * 2);
  let out = text;
  for (let e = 0; e < edits; e++) {
    const at = Math.floor(random() * out.length);
    const kind = random();
    if (kind < 0.6) out = out.slice(0, at) + SPECIAL[Math.floor(random() * SPECIAL.length)] + out.slice(at);
    else if (kind < 0.85) out = out.slice(0, at) + out.slice(at + 1 + Math.floor(random() * 3));
    else {
      // A whole line again, just after itself (a duplicate key) or elsewhere.
      const lines = out.split('\n');
      const from = Math.floor(random() * lines.length);
      lines.splice(Math.floor(random() * lines.length), 0, lines[from]!);
      out = lines.join('\n');
    }
  }
  return out;
}

describe('the fast YAML reader', () => {
  it("reads every pipeline in the repository, the bench's tree and a text of every feature, as yaml does", () => {
    for (const text of [...pipelines, binaryTreePipeline(64), FEATURES])
      assert.ok(assertAgrees(text), `left to yaml:\n${text.slice(0, 400)}`);
  });

  it('leaves to yaml what it does not read, rather than guessing', () => {
    const outside = [
      'a: &x 1\nb: *x\n', // anchors and aliases
      'a: !!str 1\n', // tags
      'a: "esc\\n"\n', // escapes
      'a: b\n  c\n', // a plain scalar over two lines
      'a: |\n  x\n\n  y\n', // a blank line inside a block scalar
      'a: >\n  x\n    y\n', // a more-indented line in a folded scalar
      'a: |-\n  x\n', // chomping indicators
      'a: [1,\n  2]\n', // a flow collection over two lines
      'a:\n- x\n', // an indentless sequence
      'a: 1\na: 2\n', // a duplicate key
      '---\na: 1\n', // document markers
      'a: 1', // no final newline
      '? a\n: 1\n', // complex keys
      '1: x\n', // a key that is not a string
      'a:\n  - b: 1\n', // a mapping inside a sequence item
      'a: {b: 1,}\n', // a trailing comma
      '',
      '# only a comment\n',
    ];
    for (const text of outside) assert.equal(readYamlSubset(text), undefined, JSON.stringify(text));
  });

  it('never gives a value yaml would not, over 3000 mutations of real pipelines', () => {
    const random = rng(20261204);
    const corpus = [...pipelines, FEATURES];
    let read = 0;
    const tries = 3000;
    for (let i = 0; i < tries; i++) if (assertAgrees(mutate(corpus[i % corpus.length]!, random))) read++;
    // Most single edits keep a text readable; if the reader took almost none, this compared nothing.
    assert.ok(read > tries * 0.25, `only ${read} of ${tries} mutations were read`);
  });
});
