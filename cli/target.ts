import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** The stack outputs every operator tool and test needs, named as in lib/stacks/crawler-stack.ts. */
export const OUTPUT_NAMES = [
  'FrontierQueueUrl',
  'FrontierDlqUrl',
  'ParseQueueUrl',
  'ParseDlqUrl',
  'PagesTableName',
  'UrlsTableName',
  'CrawlsTableName',
  'BodiesBucketName',
] as const;
export type Outputs = Record<(typeof OUTPUT_NAMES)[number], string>;

/** Where a deployed (or emulated) pipeline is and how to talk to it: sandbox, LocalStack or AWS alike. */
export interface Target {
  readonly name: string;
  readonly outputs: Outputs;
  readonly sqs: SQSClient;
  readonly ddb: DynamoDBDocumentClient;
  readonly s3: S3Client;
  /** False where StartMessageMoveTask is missing (fauxqs). */
  readonly supportsMessageMoveTask: boolean;
}

export interface Endpoints {
  readonly sqs?: string;
  readonly dynamodb?: string;
  readonly s3?: string;
  readonly cloudformation?: string;
}

export function checkOutputs(raw: Record<string, string>, where: string): Outputs {
  const missing = OUTPUT_NAMES.filter((n) => !raw[n]);
  if (missing.length > 0)
    throw new Error(`${where} lacks outputs ${missing.join(', ')}; is it this project's crawler stack?`);
  return raw as Outputs;
}

export function makeTarget(
  name: string,
  outputs: Outputs,
  endpoints: Endpoints,
  opts: {
    region: string;
    credentials?: { accessKeyId: string; secretAccessKey: string };
    supportsMessageMoveTask: boolean;
  },
): Target {
  const common = { region: opts.region, ...(opts.credentials ? { credentials: opts.credentials } : {}) };
  const dynamodb = new DynamoDBClient({
    ...common,
    ...(endpoints.dynamodb ? { endpoint: endpoints.dynamodb } : {}),
  });
  return {
    name,
    outputs,
    sqs: new SQSClient({
      ...common,
      ...(endpoints.sqs ? { endpoint: endpoints.sqs, useQueueUrlAsEndpoint: false } : {}),
    }),
    ddb: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
    s3: new S3Client({
      ...common,
      ...(endpoints.s3 ? { endpoint: endpoints.s3, forcePathStyle: true } : {}),
    }),
    supportsMessageMoveTask: opts.supportsMessageMoveTask,
  };
}

/** LocalStack accepts any key pair; passing one explicitly keeps a user's AWS_PROFILE out of the way. */
export const LOCALSTACK_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** Read a deployed stack's outputs through CloudFormation (AWS, or LocalStack with an endpoint). */
export async function stackOutputs(
  stackName: string,
  region: string,
  endpoint?: string,
  credentials?: { accessKeyId: string; secretAccessKey: string },
): Promise<Outputs> {
  const cfn = new CloudFormationClient({
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
  try {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const raw = Object.fromEntries(
      (Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
    );
    return checkOutputs(raw, `stack ${stackName}`);
  } finally {
    cfn.destroy();
  }
}
