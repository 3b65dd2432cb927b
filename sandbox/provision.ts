import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import {
  type AttributeDefinition,
  CreateTableCommand,
  type DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createClients } from '../functions/kit/clients';
import { type Emulators, LOCAL_CREDENTIALS, LOCAL_REGION, SandboxSetupError } from './emulators';

type Json = Record<string, unknown>;
export interface CfnResource {
  Type: string;
  Properties?: Json;
  Metadata?: Json;
}
export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown }>;
}

/** What a logical id resolves to locally: Ref and the GetAtt attributes used by the template. */
export type LocalResource = { ref: string; attrs: Record<string, string> };

export interface Provisioned {
  readonly resources: Map<string, LocalResource>;
  /** Stack outputs resolved to local names, keyed like CloudFormation outputs. */
  readonly outputs: Record<string, string>;
  /** Resource types present in the template that the sandbox does not create, with counts. */
  readonly notProvisioned: Record<string, number>;
  readonly template: CfnTemplate;
}

/** Types the event-source runner emulates instead of provisioning. */
const RUN_BY_RUNNER = new Set(['AWS::Lambda::Function', 'AWS::Lambda::EventSourceMapping']);

export function readTemplate(cdkOut: string, stackName: string): CfnTemplate {
  const file = path.join(cdkOut, `${stackName}.template.json`);
  if (!existsSync(file)) {
    const stacks = readdirSync(cdkOut, { withFileTypes: true })
      .filter((e) => e.isFile() && e.name.endsWith('.template.json'))
      .map((e) => e.name.replace(/\.template\.json$/, ''));
    throw new SandboxSetupError(
      `the app has no stack ${stackName} (bin/app.ts makes ${stacks.join(', ') || 'none'}); pass one of them with --stack`,
    );
  }
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as CfnTemplate;
  } catch (error) {
    throw new Error(`cannot read ${file} (${(error as Error).message}); run \`npm run synth\` first`);
  }
}

/** Clients for the emulators, from the project's one client factory. */
export function localClients(emulators: Emulators) {
  const { sqs, dynamodb, s3 } = createClients({
    region: LOCAL_REGION,
    credentials: LOCAL_CREDENTIALS,
    endpoints: { sqs: emulators.sqsEndpoint, dynamodb: emulators.dynamodbEndpoint, s3: emulators.s3Endpoint },
  });
  return { sqs, dynamodb, s3 };
}

/**
 * Resolve the intrinsic functions this template uses (Ref, Fn::GetAtt, Fn::Join) against local resources.
 * An intrinsic it cannot resolve throws, naming it, rather than passing an object on as a string.
 */
export function resolveValue(value: unknown, resources: Map<string, LocalResource>): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  const v = value as Json;
  if (typeof v?.Ref === 'string') {
    if (v.Ref === 'AWS::Region') return LOCAL_REGION;
    if (v.Ref === 'AWS::AccountId') return '000000000000';
    if (v.Ref === 'AWS::Partition') return 'aws';
    if (v.Ref === 'AWS::URLSuffix') return 'amazonaws.com';
    const r = resources.get(v.Ref);
    if (r) return r.ref;
  }
  const getAtt = v?.['Fn::GetAtt'] as [string, string] | undefined;
  if (getAtt) {
    const attr = resources.get(getAtt[0])?.attrs[getAtt[1]];
    if (attr !== undefined) return attr;
  }
  const join = v?.['Fn::Join'] as [string, unknown[]] | undefined;
  if (join) return join[1].map((p) => resolveValue(p, resources)).join(join[0]);
  throw new Error(`sandbox cannot resolve ${JSON.stringify(value).slice(0, 200)}`);
}

/** Queue names are the logical ids: unique in a stack and readable in the emulator. */
async function createQueue(
  sqs: SQSClient,
  id: string,
  props: Json,
  resources: Map<string, LocalResource>,
  overrides: ProvisionOptions,
): Promise<void> {
  const fifo = props.FifoQueue === true || props.FifoQueue === 'true';
  const attributes: Record<string, string> = {};
  const copy = [
    'VisibilityTimeout',
    'MessageRetentionPeriod',
    'DelaySeconds',
    'MaximumMessageSize',
    'ReceiveMessageWaitTimeSeconds',
  ];
  for (const key of copy) if (props[key] !== undefined) attributes[key] = String(props[key]);
  if (fifo) {
    attributes.FifoQueue = 'true';
    for (const key of ['ContentBasedDeduplication', 'DeduplicationScope', 'FifoThroughputLimit']) {
      if (props[key] !== undefined) attributes[key] = String(props[key]);
    }
  }
  if (overrides.visibilityTimeoutSeconds !== undefined && props.RedrivePolicy) {
    attributes.VisibilityTimeout = String(overrides.visibilityTimeoutSeconds);
  }
  const redrive = props.RedrivePolicy as Json | undefined;
  if (redrive) {
    attributes.RedrivePolicy = JSON.stringify({
      deadLetterTargetArn: resolveValue(redrive.deadLetterTargetArn, resources),
      maxReceiveCount: Number(redrive.maxReceiveCount),
    });
  }
  const name = fifo ? `${id}.fifo` : id;
  const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
  if (!QueueUrl) throw new Error(`CreateQueue ${name} returned no URL`);
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }),
  );
  resources.set(id, { ref: QueueUrl, attrs: { Arn: Attributes?.QueueArn ?? '', QueueName: name, QueueUrl } });
}

async function createTable(
  dynamodb: DynamoDBClient,
  id: string,
  props: Json,
  resources: Map<string, LocalResource>,
) {
  const gsis = (props.GlobalSecondaryIndexes as GlobalSecondaryIndex[] | undefined)?.map((g) => ({
    IndexName: g.IndexName,
    KeySchema: g.KeySchema,
    Projection: g.Projection,
  }));
  const stream = props.StreamSpecification as { StreamViewType?: string } | undefined;
  const out = await dynamodb.send(
    new CreateTableCommand({
      TableName: id,
      KeySchema: props.KeySchema as KeySchemaElement[],
      AttributeDefinitions: props.AttributeDefinitions as AttributeDefinition[],
      BillingMode: 'PAY_PER_REQUEST',
      ...(gsis?.length ? { GlobalSecondaryIndexes: gsis } : {}),
      ...(stream?.StreamViewType
        ? {
            StreamSpecification: {
              StreamEnabled: true,
              StreamViewType: stream.StreamViewType as 'NEW_IMAGE',
            },
          }
        : {}),
    }),
  );
  const ttl = props.TimeToLiveSpecification as { AttributeName?: string; Enabled?: boolean } | undefined;
  if (ttl?.AttributeName && ttl.Enabled) {
    await dynamodb.send(
      new UpdateTimeToLiveCommand({
        TableName: id,
        TimeToLiveSpecification: { AttributeName: ttl.AttributeName, Enabled: true },
      }),
    );
  }
  resources.set(id, {
    ref: id,
    attrs: {
      Arn: out.TableDescription?.TableArn ?? '',
      StreamArn: out.TableDescription?.LatestStreamArn ?? '',
    },
  });
}

export interface ProvisionOptions {
  /** Replace source queues' visibility timeout (seconds) so local retries take seconds, not minutes. */
  readonly visibilityTimeoutSeconds?: number;
}

/**
 * Create the template's queues (DLQs first, so redrive policies resolve), tables and buckets in the
 * emulators. Everything else is counted in `notProvisioned` so the caller can list it once.
 */
export async function provision(
  template: CfnTemplate,
  emulators: Emulators,
  options: ProvisionOptions = {},
): Promise<Provisioned> {
  const clients = localClients(emulators);
  const resources = new Map<string, LocalResource>();
  const notProvisioned: Record<string, number> = {};
  const entries = Object.entries(template.Resources);
  const queues = entries.filter(([, r]) => r.Type === 'AWS::SQS::Queue');
  queues.sort(
    ([, a], [, b]) =>
      Number(Boolean(a.Properties?.RedrivePolicy)) - Number(Boolean(b.Properties?.RedrivePolicy)),
  );
  for (const [id, r] of queues) await createQueue(clients.sqs, id, r.Properties ?? {}, resources, options);
  for (const [id, r] of entries) {
    if (r.Type === 'AWS::SQS::Queue') continue;
    if (r.Type === 'AWS::DynamoDB::Table')
      await createTable(clients.dynamodb, id, r.Properties ?? {}, resources);
    else if (r.Type === 'AWS::S3::Bucket') {
      const name = id.toLowerCase();
      await clients.s3.send(new CreateBucketCommand({ Bucket: name }));
      resources.set(id, { ref: name, attrs: { Arn: `arn:aws:s3:::${name}` } });
    } else if (!RUN_BY_RUNNER.has(r.Type)) notProvisioned[r.Type] = (notProvisioned[r.Type] ?? 0) + 1;
  }
  // Functions resolve to their logical id, so environment variables that name them still resolve.
  for (const [id, r] of entries)
    if (r.Type === 'AWS::Lambda::Function') resources.set(id, { ref: id, attrs: { Arn: id } });

  const outputs: Record<string, string> = {};
  for (const [name, output] of Object.entries(template.Outputs ?? {})) {
    try {
      outputs[name] = resolveValue(output.Value, resources);
    } catch {
      // Outputs of resources that are not provisioned (the alarm topic) have no local value.
    }
  }
  for (const c of Object.values(clients)) c.destroy();
  return { resources, outputs, notProvisioned, template };
}
