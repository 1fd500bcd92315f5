import type { Ajv, ErrorObject, ValidateFunction } from 'ajv';
import { PATH_FORMAT, SHELL_COMMAND_FORMAT } from '../core/contract.js';
import type { Diagnostic } from './diagnostics.js';
import { ajv as ajvPackage } from './lazy-packages.js';
import { INPUT_REF_PATTERN, PIPELINE_NAME_PATTERN, STAGE_NAME_PATTERN } from './pipeline-schema.js';
import type { KeyPath, YamlSource } from './source.js';
import { nearestName } from './suggest.js';

/**
 * One Ajv instance for the process, made on the first compile: compiling is the expensive
 * part, validating is cheap, and a run whose plan came from the plan cache compiles nothing.
 * `useDefaults` fills params the user left out from the stage schema, so stages and the
 * lockfile see the effective values. `verbose` gives each error its schema and data, which
 * the messages below quote. `validateSchema: false` skips checking our own schemas against
 * the draft-07 meta-schema on every start (compiling it was a tenth of a no-op run); strict
 * mode still rejects unknown keywords, and a test compiles every built-in kind's schema.
 */
let instance: Ajv | undefined;
function ajv(): Ajv {
  if (!instance) {
    instance = new (ajvPackage().Ajv)({
      allErrors: true,
      strict: true,
      allowUnionTypes: true,
      useDefaults: true,
      verbose: true,
      validateSchema: false,
    });
    // Formats the runner acts on (see contract.ts); as validation they accept any string.
    instance.addFormat(PATH_FORMAT, true);
    instance.addFormat(SHELL_COMMAND_FORMAT, true);
  }
  return instance;
}
const compiled = new WeakMap<object, ValidateFunction>();

export function compileSchema(schema: object): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    validate = ajv().compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** Patterns the user can't be expected to read as regexes, explained in words. */
const PATTERN_WORDS: Record<string, string> = {
  [INPUT_REF_PATTERN]: "an input reference: 'stage', 'stage.output', 'stage[*]', 'stage[key=value]' (each optionally with '.output')",
  [STAGE_NAME_PATTERN]: 'a name of letters, digits, _ and -, starting with a letter or _',
  '^[A-Za-z_][A-Za-z0-9_]*$': 'an identifier (letters, digits and _, not starting with a digit)',
  [PIPELINE_NAME_PATTERN]: 'one folder name: letters, digits, _, . and -, not starting with a dot',
};

/**
 * Validates `value` against `schema` and turns every Ajv error into a Diagnostic at the
 * YAML position of the offending key. `base` is where `value` sits in the document
 * (e.g. a stage's `with` map), so the same function serves the pipeline schema and each
 * stage kind's params schema.
 */
export function schemaDiagnostics(
  source: YamlSource,
  schema: object,
  value: unknown,
  base: KeyPath = [],
  describe: { what?: string; owner?: string } = {},
): Diagnostic[] {
  const validate = compileSchema(schema);
  if (validate(value)) return [];
  const errors = validate.errors ?? [];
  // A failed anyOf also reports each failed branch; keep only the anyOf, which says it all.
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const kept = errors.filter((e) => e.keyword === 'anyOf' || !anyOfPaths.has(e.instancePath));
  const diagnostics = kept.map((e) => toDiagnostic(source, e, base, describe.what ?? 'key', describe.owner ? ` ${describe.owner}` : ''));
  // `latent_dm: 2` for a required `latent_dim` is one typo: the "did you mean" says it all, and
  // "missing required 'latent_dim'" beside it would read as a second problem.
  const misspelt = new Set(
    kept.flatMap((e, i) =>
      e.keyword === 'additionalProperties' && diagnostics[i]!.suggestion ? [`${e.instancePath}/${diagnostics[i]!.suggestion}`] : [],
    ),
  );
  return diagnostics.filter(
    (_, i) =>
      kept[i]!.keyword !== 'required' ||
      !misspelt.has(`${kept[i]!.instancePath}/${String((kept[i]!.params as { missingProperty?: unknown }).missingProperty)}`),
  );
}

function toDiagnostic(source: YamlSource, e: ErrorObject, base: KeyPath, what: string, owner: string): Diagnostic {
  const path = [...base, ...pointerToPath(e.instancePath)];
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = String(params.additionalProperty);
      const known = Object.keys((e.parentSchema as { properties?: object } | undefined)?.properties ?? {});
      if (known.length) {
        const suggestion = nearestName(key, known);
        return source.diagnostic([...path, key], `unknown ${what} '${key}'${owner}; expected one of: ${known.join(', ')}`, {
          ...(suggestion ? { suggestion } : {}),
        });
      }
      const patterns = Object.keys((e.parentSchema as { patternProperties?: object }).patternProperties ?? {});
      const expected = patterns.map((p) => PATTERN_WORDS[p] ?? `matching /${p}/`).join(' or ');
      return source.diagnostic([...path, key], `invalid name '${key}': expected ${expected}`);
    }
    case 'required':
      return source.diagnostic(path, `missing required ${what} '${String(params.missingProperty)}'${owner}`);
    case 'type':
      return source.diagnostic(path, `expected ${String(params.type)}, got ${describeValue(e.data)}`, {
        at: 'value',
      });
    case 'anyOf':
      return source.diagnostic(path, `expected ${anyOfWords(e.schema)}, got ${describeValue(e.data)}`, { at: 'value' });
    case 'pattern': {
      const pattern = String(params.pattern);
      const got = JSON.stringify(e.data);
      return source.diagnostic(path, `invalid value ${got}: expected ${PATTERN_WORDS[pattern] ?? `a string matching /${pattern}/`}`, {
        at: 'value',
      });
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map((v) => JSON.stringify(v));
      const got = e.data;
      const suggestion =
        typeof got === 'string'
          ? nearestName(
              got,
              allowed.map((a) => JSON.parse(a) as string).filter((a) => typeof a === 'string'),
            )
          : undefined;
      return source.diagnostic(path, `invalid value ${JSON.stringify(got)}: expected one of ${allowed.join(', ')}`, {
        at: 'value',
        ...(suggestion ? { suggestion } : {}),
      });
    }
    case 'maximum':
    case 'minimum':
    case 'exclusiveMaximum':
    case 'exclusiveMinimum': {
      const words = { maximum: 'at most', minimum: 'at least', exclusiveMaximum: 'below', exclusiveMinimum: 'above' }[e.keyword];
      return source.diagnostic(path, `expected a value ${words} ${String(params.limit)}, got ${describeValue(e.data)}`, { at: 'value' });
    }
    case 'const':
      return source.diagnostic(path, `expected ${JSON.stringify(params.allowedValue)}`, { at: 'value' });
    default:
      return source.diagnostic(path, `${e.message ?? 'invalid'} (got ${describeValue(e.data)})`, { at: 'value' });
  }
}

function anyOfWords(schema: unknown): string {
  const branches = Array.isArray(schema) ? (schema as { type?: string; const?: unknown }[]) : [];
  const words = branches.map((b) => (b.const !== undefined ? JSON.stringify(b.const) : (b.type ?? 'a valid value')));
  return words.length > 1 ? `${words.slice(0, -1).join(', ')} or ${words.at(-1)}` : (words[0] ?? 'a valid value');
}

export function pointerToPath(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `string ${JSON.stringify(value)}`;
  return `${typeof value} ${String(value)}`;
}
