import { PATH_FORMAT } from '../core/contract.js';

/**
 * What the runner reads off a stage kind's params schema: which params name files (their
 * content is fingerprinted) and which are shell code (never spliced into). Pure functions of
 * the schema and the params, so the plan and its tests share them.
 */

interface SchemaNode {
  readonly type?: unknown;
  readonly format?: unknown;
  readonly properties?: Readonly<Record<string, SchemaNode>>;
  readonly items?: SchemaNode;
  readonly anyOf?: readonly SchemaNode[];
}

/** Top-level params whose schema is a string of `format`. */
export function propertiesWithFormat(schema: object, format: string): string[] {
  const properties = (schema as SchemaNode).properties ?? {};
  return Object.entries(properties)
    .filter(([, node]) => node.format === format)
    .map(([name]) => name);
}

/**
 * Every path the params name through `format: 'path'` strings, at the top level or in
 * arrays of them (shell `deps`), in schema order: what the fingerprint hashes.
 */
export function pathParamValues(schema: object, params: Readonly<Record<string, unknown>>): string[] {
  const properties = (schema as SchemaNode).properties ?? {};
  const paths: string[] = [];
  for (const [name, node] of Object.entries(properties)) {
    const value = params[name];
    if (node.format === PATH_FORMAT && typeof value === 'string') paths.push(value);
    else if (node.items?.format === PATH_FORMAT && Array.isArray(value))
      paths.push(...value.filter((v): v is string => typeof v === 'string'));
  }
  return paths;
}
