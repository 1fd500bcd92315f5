import type { Document, LineCounter, Node } from 'yaml';
import { yaml } from './lazy-packages.js';
import type { Diagnostic, SourcePosition } from './diagnostics.js';
import { readYamlSubset } from './yaml-subset.js';

/** A key path into the document: map keys and sequence indices. */
export type KeyPath = readonly (string | number)[];

/**
 * A YAML file that can say where every node came from, so any later check (schema,
 * references, params) can point at file:line:col. The document with positions is built
 * on first use: a pipeline whose value came from the parse cache pays for it only if
 * something turns out to be wrong.
 */
/** How far aliases may expand when a pipeline is read: beyond it, a tiny file could take gigabytes. */
const MAX_ALIAS_COUNT = 1000;

export class YamlSource {
  private parsed: { doc: Document.Parsed; lines: LineCounter } | undefined;

  constructor(
    readonly file: string,
    readonly text: string,
  ) {}

  private get document(): { doc: Document.Parsed; lines: LineCounter } {
    if (!this.parsed) {
      const { LineCounter, parseDocument } = yaml();
      const lines = new LineCounter();
      const doc = parseDocument(this.text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
      this.parsed = { doc, lines };
    }
    return this.parsed;
  }

  /** The document's value, or the syntax errors (incl. duplicate keys) that prevent one. */
  parseValue(): { value: unknown; diagnostics: Diagnostic[] } {
    // The common plain YAML is read in milliseconds; anything else, errors included, by yaml.
    const quick = this.parsed ? undefined : readYamlSubset(this.text);
    if (quick) return { value: quick, diagnostics: [] };
    const { doc } = this.document;
    const diagnostics = [...doc.errors, ...doc.warnings].map((e): Diagnostic => {
      // yaml notices an unclosed `{` or `[` only where the next line starts: point at the opener.
      const opener = /\bflow (map|sequence|collection)\b/i.test(e.message) ? unclosedFlowOpener(this.text, e.pos[0]) : undefined;
      if (opener !== undefined) {
        const [open, close] = this.text[opener] === '{' ? ['{', '}'] : ['[', ']'];
        return {
          file: this.file,
          position: this.positionAt(opener),
          keyPath: '',
          message: `YAML syntax error: this '${open}' is never closed with '${close}'`,
        };
      }
      return { file: this.file, position: this.positionAt(e.pos[0]), keyPath: '', message: yamlMessage(e.code, e.message) };
    });
    if (diagnostics.length) return { value: undefined, diagnostics };
    try {
      return { value: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }), diagnostics };
    } catch (error) {
      // yaml throws (a ReferenceError) when aliases expand past the limit: a "billion laughs" file.
      const message = `${(error as Error).message.replace(/\.$/, '')}: aliases expand past ${MAX_ALIAS_COUNT} nodes; write the values out instead of nesting aliases`;
      return { value: undefined, diagnostics: [{ file: this.file, position: { line: 1, col: 1 }, keyPath: '', message }] };
    }
  }

  positionAt(offset: number): SourcePosition {
    const { line, col } = this.document.lines.linePos(offset);
    return { line, col };
  }

  /**
   * Position of the node at `path`: its key when `at` is 'key' (the name the user typed),
   * otherwise its value. Falls back to the deepest existing ancestor, so a missing key
   * is reported at the map that lacks it.
   */
  positionOf(path: KeyPath, at: 'key' | 'value' = 'key'): SourcePosition {
    let node: unknown = this.document.doc.contents;
    const { isMap, isPair, isScalar, isSeq } = yaml();
    let best: SourcePosition = { line: 1, col: 1 };
    for (const [i, segment] of path.entries()) {
      const isLast = i === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
        if (!pair) return best;
        const keyNode = pair.key as Node;
        if (keyNode.range) best = this.positionAt(keyNode.range[0]);
        if (isLast && at === 'value' && isNodeWithRange(pair.value)) best = this.positionAt(pair.value.range[0]);
        node = pair.value;
      } else if (isSeq(node) && typeof segment === 'number') {
        const item = node.items[segment];
        if (!isNodeWithRange(item)) return best;
        best = this.positionAt(item.range[0]);
        node = item;
      } else {
        return best;
      }
    }
    return best;
  }

  diagnostic(path: KeyPath, message: string, extra: { suggestion?: string; at?: 'key' | 'value' } = {}): Diagnostic {
    return {
      file: this.file,
      position: this.positionOf(path, extra.at),
      keyPath: path.join('.'),
      message,
      ...(extra.suggestion ? { suggestion: extra.suggestion } : {}),
    };
  }
}

function isNodeWithRange(node: unknown): node is Node & { range: [number, number, number] } {
  return typeof node === 'object' && node !== null && Array.isArray((node as { range?: unknown }).range);
}

/**
 * The offset of the last `{` or `[` before `end` that no `}` or `]` closes, skipping quoted
 * strings and comments; undefined when every one is closed.
 */
export function unclosedFlowOpener(text: string, end: number): number | undefined {
  const open: number[] = [];
  for (let i = 0; i < end; i++) {
    const c = text[i]!;
    if (c === '"' || c === "'") {
      for (i++; i < end && text[i] !== c; i++) if (c === '"' && text[i] === '\\') i++;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      while (i < end && text[i] !== '\n') i++;
    } else if (c === '{' || c === '[') open.push(i);
    else if ((c === '}' || c === ']') && open.length) open.pop();
  }
  return open.at(-1);
}

function yamlMessage(code: string, message: string): string {
  if (code === 'DUPLICATE_KEY') return 'duplicate key: a key may appear only once in a mapping';
  return `YAML syntax error: ${message.split('\n')[0]}`;
}
