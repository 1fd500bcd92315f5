import { Type, type Static } from '@sinclair/typebox';

/**
 * The pipeline file format, as one JSON Schema that is also the TypeScript type.
 * `npm run schema` publishes it to schema/pipeline.schema.json for editor completion;
 * a test keeps the published file in sync.
 */

export const STAGE_NAME_PATTERN = '^[A-Za-z_][A-Za-z0-9_-]*$';

/** One safe folder name: no '/', and no leading dot, so never `.` or `..`. */
export const PIPELINE_NAME_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]*$';

const Scalar = Type.Union([Type.String(), Type.Number(), Type.Boolean()]);

/**
 * `stage`, `stage.output`, `stage[*]` (gather all variants), `stage[key=value,…]` (only the
 * matching variants), each optionally followed by `.output`.
 */
export const INPUT_REF_PATTERN =
  '^[A-Za-z_][A-Za-z0-9_-]*(\\[(\\*|[A-Za-z_][A-Za-z0-9_]*=[^,\\]=]+(,[A-Za-z_][A-Za-z0-9_]*=[^,\\]=]+)*)\\])?(\\.[A-Za-z0-9_.-]+)?$';

const StageSpec = Type.Object(
  {
    uses: Type.String({
      minLength: 1,
      description:
        "Stage kind: a built-in name (e.g. 'shell', 'train-vae') or a path to a user module ('./stages/my-stage.ts'), relative to the pipeline file.",
    }),
    description: Type.Optional(Type.String()),
    in: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String({ pattern: INPUT_REF_PATTERN }), {
        additionalProperties: false,
        description:
          "Inputs: name → 'stage', 'stage.output', 'stage[*]' to gather every variant of a matrix stage, or 'stage[key=value]' for only the matching variants. A plain reference to a matrix stage fans out: one instance per upstream variant.",
      }),
    ),
    with: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          "Params of the stage kind. Strings may interpolate ${params.NAME} and ${matrix.KEY}; a string that is exactly one ${...} keeps the value's type.",
      }),
    ),
    matrix: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.Array(Scalar, { minItems: 1 }), {
        additionalProperties: false,
        description: 'Ablation axes: one stage instance per combination of values (cartesian product).',
      }),
    ),
    retries: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 10,
        description: 'Run a failed instance again up to this many times before reporting it failed (flaky machines, lost workers).',
      }),
    ),
  },
  { additionalProperties: false },
);

export const PipelineSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    pipeline: Type.String({
      pattern: PIPELINE_NAME_PATTERN,
      maxLength: 100,
      description:
        'Pipeline name, one folder name (artifacts go to artifacts/<name>/): letters, digits, _, . and -, not starting with a dot.',
    }),
    description: Type.Optional(Type.String()),
    params: Type.Optional(
      Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.Unknown(), {
        additionalProperties: false,
        description: 'Pipeline-wide defaults, referenced as ${params.NAME}; `--set NAME=VALUE` overrides them.',
      }),
    ),
    replicates: Type.Optional(
      Type.Array(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), {
        minItems: 1,
        uniqueItems: true,
        description:
          'Matrix keys whose values repeat one configuration (seeds): `ablate show`, `ablate diff` and the report aggregate over them (mean ± 95 % CI, n).',
      }),
    ),
    stages: Type.Record(Type.String({ pattern: STAGE_NAME_PATTERN, maxLength: 100 }), StageSpec, {
      minProperties: 1,
      additionalProperties: false,
    }),
  },
  {
    additionalProperties: false,
    $id: 'https://ablate.dev/schema/pipeline.schema.json',
    title: 'ablate pipeline',
  },
);

export type PipelineSpec = Static<typeof PipelineSchema>;
export type StageSpec = Static<typeof StageSpec>;

/** The schema as published in schema/pipeline.schema.json. */
export function publishedSchemaText(): string {
  return JSON.stringify({ $schema: 'http://json-schema.org/draft-07/schema#', ...PipelineSchema }, null, 2) + '\n';
}
