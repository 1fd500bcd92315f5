/**
 * A fast reader for the plain YAML that pipelines are mostly written in, and nothing else.
 *
 * Why: `yaml` (which gives every error its file:line:col) parses a 1000-stage pipeline in
 * ~0.35 s, its lexer and composer being generators that build a node per token; a cold run
 * waits for that before its first stage. This reads the same text in a few milliseconds.
 *
 * What it reads: block mappings of simple keys; values that are one-line plain or quoted
 * scalars, one-line flow collections, `|` / `>` block scalars of evenly indented lines, nested
 * block mappings, and block sequences of such values; comments and blank lines.
 *
 * The promise: it returns the value `yaml` would, or undefined. Anything outside that subset
 * (anchors, tags, escapes, multi-line scalars, duplicate keys, odd indentation, every kind of
 * error) gets undefined, and the caller asks `yaml`, which says what is wrong and where. Plain
 * scalars are typed by `yaml`'s own core-schema tags (`resolvePlain`), so `1e3`, `0x10`,
 * `True` or `~` mean here exactly what they mean there. test/yaml-subset.test.ts holds it to
 * that on every pipeline in the repository and on thousands of mutations of them.
 */

import type { ScalarTag } from 'yaml';
import { yaml } from './lazy-packages.js';

/** A plain scalar's value as `yaml`'s core schema reads it; `UNSURE` when its tag reports a problem. */
type PlainResolver = (text: string) => unknown;
const UNSURE: unique symbol = Symbol('unsure');

let corePlainResolverMemo: PlainResolver | undefined;

/** How `yaml` types a plain scalar (`1e3`, `0x10`, `True`, `~`): its own core-schema tags, in its order. */
function corePlainResolver(): PlainResolver {
  if (corePlainResolverMemo) return corePlainResolverMemo;
  const { Schema, isScalar } = yaml();
  const tags = new Schema({}).tags.filter(
    (tag): tag is ScalarTag & { test: RegExp } => tag.default === true && !tag.collection && tag.test instanceof RegExp,
  );
  return (corePlainResolverMemo = (text) => {
    const tag = tags.find((t) => t.test.test(text));
    if (!tag) return text;
    let failed = false;
    const value = tag.resolve(text, () => (failed = true), {});
    if (failed) return UNSURE;
    return isScalar(value) ? value.value : value;
  });
}

/** Thrown inside the reader to give up; never escapes readYamlSubset. */
class OutsideSubset extends Error {}
const outside = (): never => {
  throw new OutsideSubset();
};

/** Keys this reader takes: names, not anything the schema could type or YAML could treat specially. */
const SIMPLE_KEY = /^[A-Za-z_$./][\w$./+=-]*$/;
/** Characters YAML forbids or treats specially anywhere, in the few places this reader would have to care. */
const UNHANDLED_CHARS = /[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]/;
/** What a plain scalar may not start with: indicators (quotes and collections are read elsewhere). */
const PLAIN_START_FORBIDDEN = new Set([...'#&*!|>%@`,[]{}\'"']);

export function readYamlSubset(text: string): Record<string, unknown> | undefined {
  if (UNHANDLED_CHARS.test(text) || !text.endsWith('\n')) return undefined;
  try {
    const reader = new LineReader(text.split('\n'), corePlainResolver());
    const root = reader.blockMap(0);
    return reader.atEnd() ? root : undefined;
  } catch (error) {
    if (error instanceof OutsideSubset) return undefined;
    throw error;
  }
}

const indentOf = (line: string): number => {
  let i = 0;
  while (line.charCodeAt(i) === 32) i++;
  return i;
};

/** Blank, or only a comment: lines that carry no value outside a block scalar. */
const isFiller = (line: string): boolean => {
  const i = indentOf(line);
  return i === line.length || line[i] === '#';
};

class LineReader {
  private next = 0;

  constructor(
    private readonly lines: readonly string[],
    private readonly resolvePlain: PlainResolver,
  ) {}

  atEnd(): boolean {
    return this.peek() === undefined;
  }

  /** The index of the next line that carries content, skipping blank and comment lines. */
  private peek(): number | undefined {
    while (this.next < this.lines.length && isFiller(this.lines[this.next]!)) this.next++;
    return this.next < this.lines.length ? this.next : undefined;
  }

  /** A block mapping whose keys start at column `indent`. */
  blockMap(indent: number): Record<string, unknown> {
    const map: Record<string, unknown> = {};
    for (let at = this.peek(); at !== undefined; at = this.peek()) {
      const line = this.lines[at]!;
      const lineIndent = indentOf(line);
      if (lineIndent < indent) break;
      if (lineIndent > indent) outside();
      this.next++;
      const { key, rest } = splitKey(line, indent);
      if (key === '__proto__' || Object.hasOwn(map, key) || this.resolvePlain(key) !== key) outside();
      map[key] = this.blockValue(rest, indent);
    }
    if (!Object.keys(map).length) outside();
    return map;
  }

  /** The value after `key:` on a line whose key is at `indent`: inline, a block scalar, or a nested block. */
  private blockValue(rest: string, indent: number): unknown {
    const body = stripComment(rest);
    if (body === '|' || body === '>') return this.blockScalar(body, indent);
    if (body !== '') return inlineValue(body, this.resolvePlain);
    const at = this.peek();
    const childIndent = at === undefined ? -1 : indentOf(this.lines[at]!);
    if (childIndent <= indent) return this.plain('');
    return this.lines[at!]!.startsWith('- ', childIndent) ? this.blockSeq(childIndent) : this.blockMap(childIndent);
  }

  /** A block sequence whose dashes are at column `indent`; each item an inline value. */
  private blockSeq(indent: number): unknown[] {
    const items: unknown[] = [];
    for (let at = this.peek(); at !== undefined; at = this.peek()) {
      const line = this.lines[at]!;
      const lineIndent = indentOf(line);
      if (lineIndent < indent) break;
      if (lineIndent > indent || !line.startsWith('- ', indent)) outside();
      this.next++;
      const body = stripComment(line.slice(indent + 2));
      // `- key: value` (a mapping per item) and `-` followed by a nested block are not read here.
      const isFlow = body.startsWith('{') || body.startsWith('[');
      if (body === '' || body === '|' || body === '>' || (!isFlow && /:( |$)/.test(body.replace(/'[^']*'|"[^"]*"/g, '')))) outside();
      items.push(inlineValue(body, this.resolvePlain));
    }
    return items;
  }

  /**
   * `|` (lines kept) or `>` (lines folded into one), clipped to one final newline: only when
   * every line has the same indentation and none is blank, where folding has one meaning.
   */
  private blockScalar(style: '|' | '>', parentIndent: number): string {
    const first = this.next;
    const contentIndent = first < this.lines.length ? indentOf(this.lines[first]!) : 0;
    if (contentIndent <= parentIndent || contentIndent === this.lines[first]!.length) outside();
    const content: string[] = [];
    let end = first;
    for (; end < this.lines.length; end++) {
      const line = this.lines[end]!;
      if (line === '') break;
      const lineIndent = indentOf(line);
      if (lineIndent === line.length) outside(); // a line of spaces: content or not, depending on rules not worth copying
      if (lineIndent < contentIndent) break;
      if (lineIndent > contentIndent) outside();
      content.push(line.slice(contentIndent));
    }
    // A blank line may end the scalar only if what follows is not more of it.
    let after = end;
    while (after < this.lines.length && this.lines[after] === '') after++;
    if (after < this.lines.length && after > end && indentOf(this.lines[after]!) >= contentIndent) outside();
    this.next = end;
    return content.join(style === '|' ? '\n' : ' ') + '\n';
  }

  private plain(text: string): unknown {
    const value = this.resolvePlain(text);
    return value === UNSURE ? outside() : value;
  }
}

/** `key: rest` at column `indent`; the key plain or single-line quoted, followed by ':' and a space or the line's end. */
function splitKey(line: string, indent: number): { key: string; rest: string } {
  const colon = line.indexOf(':', indent);
  if (colon < 0 || (colon + 1 < line.length && line[colon + 1] !== ' ')) outside();
  const key = line.slice(indent, colon);
  if (!SIMPLE_KEY.test(key)) outside();
  return { key, rest: line.slice(colon + 1) };
}

/** The text before a comment (a '#' after whitespace), trimmed; quotes are respected. */
function stripComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') {
      if (i === 0 || text[i - 1] === ' ' || text[i - 1] === '[' || text[i - 1] === '{' || text[i - 1] === ',') quote = c;
    } else if (c === '#' && (i === 0 || text[i - 1] === ' ')) return text.slice(0, i).trim();
  }
  return text.trim();
}

/** A value on one line of block context: a flow collection, a quoted scalar, or a plain one. */
function inlineValue(body: string, resolvePlain: PlainResolver): unknown {
  const first = body[0]!;
  if (first === '{' || first === '[' || first === "'" || first === '"') {
    const flow = new FlowReader(body, resolvePlain);
    const value = flow.node();
    if (!flow.atEnd()) outside();
    return value;
  }
  if (!plainMayStartWith(body) || body.includes(': ') || body.endsWith(':') || body.includes(' #')) outside();
  const value = resolvePlain(body);
  return value === UNSURE ? outside() : value;
}

function plainMayStartWith(text: string): boolean {
  const c = text[0]!;
  if (PLAIN_START_FORBIDDEN.has(c)) return false;
  // '-', '?' and ':' start a plain scalar only when something other than a space follows.
  if (c === '-' || c === '?' || c === ':') return text.length > 1 && text[1] !== ' ';
  return true;
}

/** A one-line flow collection or quoted scalar, read from `pos`. */
class FlowReader {
  private pos = 0;

  constructor(
    private readonly text: string,
    private readonly resolvePlain: PlainResolver,
  ) {}

  atEnd(): boolean {
    this.skipSpaces();
    return this.pos === this.text.length;
  }

  private skipSpaces(): void {
    while (this.text.charCodeAt(this.pos) === 32) this.pos++;
  }

  node(): unknown {
    this.skipSpaces();
    const c = this.text[this.pos];
    if (c === '{') return this.map();
    if (c === '[') return this.seq();
    if (c === "'" || c === '"') return this.quoted();
    return this.plainScalar();
  }

  private map(): Record<string, unknown> {
    this.pos++;
    const map: Record<string, unknown> = {};
    this.skipSpaces();
    if (this.text[this.pos] === '}') {
      this.pos++;
      return map;
    }
    for (;;) {
      this.skipSpaces();
      const start = this.pos;
      const colon = this.text.indexOf(': ', start);
      if (colon < 0) outside();
      const key = this.text.slice(start, colon);
      if (!SIMPLE_KEY.test(key) || key === '__proto__' || Object.hasOwn(map, key) || this.resolvePlain(key) !== key) outside();
      this.pos = colon + 2;
      map[key] = this.node();
      if (this.closes('}')) return map;
    }
  }

  private seq(): unknown[] {
    this.pos++;
    const items: unknown[] = [];
    this.skipSpaces();
    if (this.text[this.pos] === ']') {
      this.pos++;
      return items;
    }
    for (;;) {
      items.push(this.node());
      if (this.closes(']')) return items;
    }
  }

  /** After an entry: true at the closing bracket, false after a comma followed by another entry. */
  private closes(bracket: '}' | ']'): boolean {
    this.skipSpaces();
    const c = this.text[this.pos++];
    if (c === bracket) return true;
    if (c !== ',') outside();
    this.skipSpaces();
    if (this.text[this.pos] === '}' || this.text[this.pos] === ']' || this.text[this.pos] === ',') outside(); // trailing or doubled comma
    return false;
  }

  /** 'single' (with '' for a quote) or "double" without escapes; always a string. */
  private quoted(): string {
    const quote = this.text[this.pos]!;
    let value = '';
    for (let i = this.pos + 1; i < this.text.length; i++) {
      const c = this.text[i]!;
      if (quote === '"' && c === '\\') outside();
      if (c !== quote) {
        value += c;
        continue;
      }
      if (quote === "'" && this.text[i + 1] === "'") {
        value += "'";
        i++;
        continue;
      }
      this.pos = i + 1;
      // A quoted scalar is a whole entry: a ':' after it would make it a key, anything else an error.
      const next = this.text[this.pos];
      if (next !== undefined && next !== ' ' && next !== ',' && next !== ']' && next !== '}') outside();
      return value;
    }
    return outside(); // not closed on this line
  }

  /** A plain scalar inside a flow collection: up to the next ',', ']' or '}'; no ':' or '#' at all. */
  private plainScalar(): unknown {
    const start = this.pos;
    while (this.pos < this.text.length && !',[]{}'.includes(this.text[this.pos]!)) this.pos++;
    const raw = this.text.slice(start, this.pos).trimEnd();
    if (raw === '' || !plainMayStartWith(raw) || raw.includes(':') || raw.includes('#')) outside();
    const value = this.resolvePlain(raw);
    return value === UNSURE ? outside() : value;
  }
}
