/**
 * Errors as data. Every problem found in a pipeline file is a Diagnostic with the
 * position of the offending key, so a user (or an editor) can jump straight to it.
 */

export interface SourcePosition {
  /** 1-based line. */
  readonly line: number;
  /** 1-based column. */
  readonly col: number;
}

export interface Diagnostic {
  readonly file: string;
  /** Absent only when the problem has no place in the file (e.g. a `--set` on the command line). */
  readonly position?: SourcePosition;
  /** Dotted path of the key in the document, e.g. `stages.vae.with.beta`. */
  readonly keyPath: string;
  readonly message: string;
  /** Nearest valid name, when the problem is a misspelling. */
  readonly suggestion?: string;
}

/** Thrown when a pipeline is invalid; carries every diagnostic found, not just the first. */
export class PipelineError extends Error {
  readonly diagnostics: readonly Diagnostic[];
  /** The file's text, for code frames under each message. */
  sourceText?: string;
  constructor(diagnostics: readonly Diagnostic[]) {
    const sorted = sortDiagnostics(diagnostics);
    super(sorted.map((d) => formatDiagnostic(d)).join('\n'));
    this.diagnostics = sorted;
    this.name = 'PipelineError';
  }
}

/** `file:line:col: error: message (at key) — did you mean 'x'?` — the form compilers use, so terminals and editors link it. */
export function formatDiagnostic(d: Diagnostic, source?: string): string {
  const where = d.position ? `${d.file}:${d.position.line}:${d.position.col}` : d.file;
  const key = d.keyPath ? ` (at ${d.keyPath})` : '';
  const hint = d.suggestion ? `; did you mean '${d.suggestion}'?` : '';
  let text = `${where}: error: ${d.message}${hint}${key}`;
  if (source && d.position) text += '\n' + codeFrame(source, d.position);
  return text;
}

/** The offending line with a caret under the column. */
export function codeFrame(source: string, position: SourcePosition): string {
  const lineText = source.split(/\r?\n/)[position.line - 1] ?? '';
  const gutter = `${position.line} | `;
  return `${gutter}${lineText}\n${' '.repeat(gutter.length + position.col - 1)}^`;
}

/** Stable order for reporting: by file, then line, then column. */
export function sortDiagnostics(list: readonly Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      a.file.localeCompare(b.file) || (a.position?.line ?? 0) - (b.position?.line ?? 0) || (a.position?.col ?? 0) - (b.position?.col ?? 0),
  );
}
