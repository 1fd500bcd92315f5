import { nearestName } from './suggest.js';

/** What `${params.NAME}` and `${matrix.KEY}` resolve against. */
export interface InterpolationScope {
  readonly params: Readonly<Record<string, unknown>>;
  readonly matrix: Readonly<Record<string, unknown>>;
}

export interface InterpolationError {
  /** Path inside the interpolated value, e.g. ['layers', 0]. */
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly suggestion?: string;
}

const REFERENCE = /\$\{([^}]*)\}/g;
const NAMESPACES = ['params', 'matrix'] as const;

/**
 * Replaces `${params.NAME}` / `${matrix.KEY}` in every string of `value`. A string that is
 * exactly one reference takes the referenced value with its type (so `"${matrix.beta}"` is
 * the number 4); inside a longer string it is spliced in as text. Other `${...}` (shell
 * variables such as `${HOME}`) are left alone, but a dotted reference to an unknown
 * namespace is reported, since only a typo produces one.
 */
export function interpolate(
  value: unknown,
  scope: InterpolationScope,
  errors: InterpolationError[],
  path: (string | number)[] = [],
): unknown {
  if (typeof value === 'string') return interpolateString(value, scope, errors, path);
  if (Array.isArray(value)) return value.map((item, i) => interpolate(item, scope, errors, [...path, i]));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolate(v, scope, errors, [...path, k])]));
  }
  return value;
}

function interpolateString(text: string, scope: InterpolationScope, errors: InterpolationError[], path: (string | number)[]): unknown {
  const whole = /^\$\{([^}]*)\}$/.exec(text);
  if (whole) {
    const resolved = lookup(whole[1]!, scope, errors, path);
    return resolved.found ? resolved.value : text;
  }
  return text.replace(REFERENCE, (match, expr: string) => {
    const resolved = lookup(expr, scope, errors, path);
    if (!resolved.found) return match;
    return typeof resolved.value === 'object' ? JSON.stringify(resolved.value) : String(resolved.value);
  });
}

/** A command's text with its references turned into shell variables, and those variables' values. */
export interface ShellCommand {
  readonly text: string;
  readonly vars: Readonly<Record<string, string>>;
}

/** `${params.lr}` → the variable that carries it: `ABLATE_PARAM_lr`; `${matrix.beta}` → `ABLATE_MATRIX_beta`. */
export function shellVariableName(namespace: 'params' | 'matrix', name: string): string {
  return `ABLATE_${namespace === 'params' ? 'PARAM' : 'MATRIX'}_${name}`;
}

/** The inverse of shellVariableName; undefined for any other name. */
export function parseShellVariableName(variable: string): { namespace: 'params' | 'matrix'; name: string } | undefined {
  const m = /^ABLATE_(PARAM|MATRIX)_(.+)$/.exec(variable);
  return m ? { namespace: m[1] === 'PARAM' ? 'params' : 'matrix', name: m[2]! } : undefined;
}

/**
 * Interpolation for text that /bin/sh will parse. A value pasted into a command is code to
 * the shell (`$(…)`, `;`, quotes), whatever quoting is tried around it, since the reference
 * may already sit inside quotes of the user's. So each `${params.NAME}` / `${matrix.KEY}`
 * becomes a reference to an environment variable, which the shell expands as data only, and
 * the values travel beside the text (they are part of the stage's params, so fingerprinted).
 */
export function interpolateShellCommand(
  text: string,
  scope: InterpolationScope,
  errors: InterpolationError[],
  path: (string | number)[],
): ShellCommand {
  const vars: Record<string, string> = {};
  const rewritten = text.replace(REFERENCE, (match, expr: string) => {
    const resolved = lookup(expr, scope, errors, path);
    if (!resolved.found) return match;
    const [namespace, name] = expr.trim().split('.') as ['params' | 'matrix', string];
    const variable = shellVariableName(namespace, name);
    vars[variable] = typeof resolved.value === 'object' ? JSON.stringify(resolved.value) : String(resolved.value);
    return `\${${variable}}`;
  });
  return { text: rewritten, vars };
}

function lookup(
  expr: string,
  scope: InterpolationScope,
  errors: InterpolationError[],
  path: (string | number)[],
): { found: true; value: unknown } | { found: false } {
  const m = /^\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*$/.exec(expr);
  if (!m) return { found: false };
  const [, namespace, name] = m as unknown as [string, string, string];
  if (!(NAMESPACES as readonly string[]).includes(namespace)) {
    const suggestion = nearestName(namespace, NAMESPACES);
    errors.push({
      path,
      message: `unknown reference '\${${expr.trim()}}': only \${params.NAME} and \${matrix.KEY} are interpolated`,
      ...(suggestion ? { suggestion: `\${${suggestion}.${name}}` } : {}),
    });
    return { found: false };
  }
  const table = scope[namespace as (typeof NAMESPACES)[number]];
  if (!Object.hasOwn(table, name)) {
    const known = Object.keys(table);
    const suggestion = nearestName(name, known);
    const where = namespace === 'params' ? 'pipeline params' : "this stage's matrix (and its upstream variants)";
    errors.push({
      path,
      message: `unknown ${namespace === 'params' ? 'param' : 'matrix key'} '${name}' in '\${${namespace}.${name}}': ${known.length ? `${where} define ${known.join(', ')}` : `${where} define none`}`,
      ...(suggestion ? { suggestion: `\${${namespace}.${suggestion}}` } : {}),
    });
    return { found: false };
  }
  return { found: true, value: table[name] };
}
