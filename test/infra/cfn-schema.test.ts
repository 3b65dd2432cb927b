import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { synthCrawlerStack } from './synth';

// Both stages' templates checked offline against CloudFormation's resource schemas (AWS's own service spec,
// @aws-cdk/aws-service-spec): every property name, type, enum value and required property, so a template
// LocalStack would take but CloudFormation would refuse fails here. The spec has no numeric ranges, so the
// ranges of the properties this stack sets are listed below, from the CloudFormation reference.

interface PropType {
  type: string;
  element?: PropType;
  types?: PropType[];
  reference?: { $ref: string };
  allowedValues?: unknown[];
}
interface PropSpec {
  type: PropType;
  required?: boolean;
}
interface Shape {
  $id: string;
  cloudFormationType?: string;
  properties: Record<string, PropSpec>;
}

const require = createRequire(import.meta.url);
const db = JSON.parse(
  gunzipSync(readFileSync(require.resolve('@aws-cdk/aws-service-spec/db.json.gz'))).toString(),
) as {
  schema: {
    resource: { entities: Record<string, Shape> };
    typeDefinition: { entities: Record<string, Shape> };
  };
};
const resourceSpecs = new Map(
  Object.values(db.schema.resource.entities).map((r) => [r.cloudFormationType as string, r]),
);
const typeDefs = new Map(Object.values(db.schema.typeDefinition.entities).map((t) => [t.$id, t]));

/** Ranges CloudFormation enforces on properties this stack sets (the spec carries types, not ranges). */
const RANGES: Record<string, [number, number]> = {
  'AWS::SQS::Queue.VisibilityTimeout': [0, 43_200],
  'AWS::SQS::Queue.MessageRetentionPeriod': [60, 1_209_600],
  'AWS::SQS::Queue.ReceiveMessageWaitTimeSeconds': [0, 20],
  'AWS::SQS::Queue.DelaySeconds': [0, 900],
  'AWS::Lambda::Function.MemorySize': [128, 10_240],
  'AWS::Lambda::Function.Timeout': [1, 900],
  'AWS::Lambda::EventSourceMapping.BatchSize': [1, 10_000],
  'AWS::Lambda::EventSourceMapping.MaximumBatchingWindowInSeconds': [0, 300],
  'AWS::Lambda::EventSourceMapping.ScalingConfig.MaximumConcurrency': [2, 1_000],
};

const isIntrinsic = (v: unknown): boolean =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.keys(v).length === 1 &&
  /^(Ref|Fn::|Condition)/.test(Object.keys(v)[0] as string);

/** Problems with `value` against `type`, each prefixed by its property path. */
function check(value: unknown, type: PropType, at: string): string[] {
  if (isIntrinsic(value)) return [];
  const problems: string[] = [];
  if (type.allowedValues && !type.allowedValues.includes(value))
    problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(type.allowedValues)}`);
  const range = RANGES[at.replace(/^[^.]+\./, '').replace(/\[\d+\]/g, '')];
  switch (type.type) {
    case 'json':
      break;
    case 'string':
      if (typeof value !== 'string') problems.push(`${at}: expected a string, got ${JSON.stringify(value)}`);
      break;
    case 'integer':
    case 'number': {
      const n = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
      if (typeof n !== 'number' || Number.isNaN(n) || (type.type === 'integer' && !Number.isInteger(n)))
        problems.push(`${at}: expected ${type.type}, got ${JSON.stringify(value)}`);
      else if (range && (n < range[0] || n > range[1]))
        problems.push(`${at}: ${n} is outside ${range[0]}..${range[1]}`);
      break;
    }
    case 'boolean':
      if (typeof value !== 'boolean' && value !== 'true' && value !== 'false')
        problems.push(`${at}: expected a boolean, got ${JSON.stringify(value)}`);
      break;
    case 'array':
      if (!Array.isArray(value)) problems.push(`${at}: expected a list`);
      else
        for (const [i, v] of value.entries())
          problems.push(...check(v, type.element as PropType, `${at}[${i}]`));
      break;
    case 'map':
      if (typeof value !== 'object' || value === null || Array.isArray(value))
        problems.push(`${at}: expected a map`);
      else
        for (const [k, v] of Object.entries(value))
          problems.push(...check(v, type.element as PropType, `${at}.${k}`));
      break;
    case 'tag':
      problems.push(
        ...checkObject(
          value,
          {
            Key: { type: { type: 'string' }, required: true },
            Value: { type: { type: 'string' }, required: true },
          },
          at,
        ),
      );
      break;
    case 'ref': {
      const def = typeDefs.get(type.reference?.$ref ?? '');
      if (!def) problems.push(`${at}: unknown type ${type.reference?.$ref}`);
      else problems.push(...checkObject(value, def.properties, at));
      break;
    }
    case 'union':
      if ((type.types ?? []).every((t) => check(value, t, at).length > 0))
        problems.push(`${at}: matches none of its types: ${JSON.stringify(value).slice(0, 80)}`);
      break;
    default:
      problems.push(`${at}: the spec's type "${type.type}" is not understood by this check`);
  }
  return problems;
}

function checkObject(value: unknown, properties: Record<string, PropSpec>, at: string): string[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return [`${at}: expected an object`];
  const problems: string[] = [];
  for (const [name, v] of Object.entries(value)) {
    const spec = properties[name];
    if (!spec) problems.push(`${at}.${name}: no such property`);
    else problems.push(...check(v, spec.type, `${at}.${name}`));
  }
  for (const [name, spec] of Object.entries(properties))
    if (spec.required && !(name in value)) problems.push(`${at}.${name}: required, missing`);
  return problems;
}

type Template = { Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }> };

/** Every schema problem of a template; custom resources (Custom::*) have no schema to check. */
function validate(template: Template): string[] {
  const problems: string[] = [];
  for (const [id, r] of Object.entries(template.Resources)) {
    if (r.Type.startsWith('Custom::')) continue;
    const spec = resourceSpecs.get(r.Type);
    if (!spec) {
      problems.push(`${id}: unknown resource type ${r.Type}`);
      continue;
    }
    // The path is id.Type.Property…: ids and types hold no dots, so the range key is the path minus the id.
    problems.push(...checkObject(r.Properties ?? {}, spec.properties, `${id}.${r.Type}`));
  }
  return problems;
}

describe('synthesized templates against the CloudFormation resource schemas', () => {
  for (const stage of ['dev', 'prod'] as const)
    it(`${stage}: every property exists, has its type and allowed value, and every required one is set`, () => {
      const template = synthCrawlerStack(stage).template.toJSON() as Template;
      expect(Object.keys(template.Resources).length).toBeGreaterThan(20);
      expect(validate(template)).toEqual([]);
    });

  it('fails on a misspelt property, a wrong type, a value outside its enum or range, and a missing required one', () => {
    const template = synthCrawlerStack('dev').template.toJSON() as Template;
    const byType = (type: string) =>
      Object.entries(template.Resources).find(([, r]) => r.Type === type) as [
        string,
        { Properties: Record<string, unknown> },
      ];
    const [logId, log] = byType('AWS::Logs::LogGroup');
    const [queueId, queue] = byType('AWS::SQS::Queue');
    const [esmId, esm] = byType('AWS::Lambda::EventSourceMapping');
    const [fnId, fn] = byType('AWS::Lambda::Function');
    log.Properties.RetentionInDays = 8;
    queue.Properties.VisibiltyTimeout = 30;
    queue.Properties.MessageRetentionPeriod = 'two weeks';
    esm.Properties.ScalingConfig = { MaximumConcurrency: 1 };
    delete fn.Properties.Code;
    const problems = validate(template);
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^${logId}\\..*RetentionInDays: 8 is not one of`)),
        expect.stringMatching(new RegExp(`^${queueId}\\..*VisibiltyTimeout: no such property`)),
        expect.stringMatching(new RegExp(`^${queueId}\\..*MessageRetentionPeriod: expected integer`)),
        expect.stringMatching(new RegExp(`^${esmId}\\..*MaximumConcurrency: 1 is outside 2\\.\\.1000`)),
        expect.stringMatching(new RegExp(`^${fnId}\\..*Code: required, missing`)),
      ]),
    );
    expect(problems).toHaveLength(5);
  });
});
