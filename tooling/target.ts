import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type { S3Client } from '@aws-sdk/client-s3';
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type ClientOptions, createClients } from '../functions/kit/clients';

/**
 * A stack's outputs. PipelineStack names them by convention (`<Name>QueueUrl`, `<Name>DlqUrl`,
 * `<Name>TableName`, `<Name>BucketName`), so tools find any pipeline's resources without knowing it; `O` are
 * the names a caller has checked are there.
 */
export type Outputs<O extends string = never> = Readonly<Record<O, string>> &
  Readonly<Record<string, string | undefined>>;

/** Where a deployed (or emulated) pipeline is and how to talk to it: sandbox, LocalStack or AWS alike. */
export interface Target<O extends string = never> {
  readonly name: string;
  readonly stackName: string;
  readonly outputs: Outputs<O>;
  readonly sqs: SQSClient;
  readonly ddb: DynamoDBDocumentClient;
  readonly s3: S3Client;
  /** False where StartMessageMoveTask is missing (fauxqs). */
  readonly supportsMessageMoveTask: boolean;
  /** Close the clients. */
  destroy(): void;
}

export type TargetKind = 'sandbox' | 'localstack' | 'aws';

/** LocalStack accepts any key pair; passing one explicitly keeps a user's AWS_PROFILE out of the way. */
export const LOCALSTACK_CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' };

/** Check that `outputs` has every name in `required`, naming the missing ones and the stack. */
export function requireOutputs<O extends string>(
  outputs: Readonly<Record<string, string | undefined>>,
  required: readonly O[],
  where: string,
): Outputs<O> {
  const missing = required.filter((n) => !outputs[n]);
  if (missing.length > 0)
    throw new Error(
      `${where} lacks the outputs ${missing.join(', ')}; is it the stack this command is for? (pass --stack)`,
    );
  return outputs as Outputs<O>;
}

/** A target over the one client factory (functions/kit/clients.ts), checked for the outputs the caller needs. */
export function makeTarget<O extends string = never>(
  name: string,
  stackName: string,
  outputs: Readonly<Record<string, string | undefined>>,
  clients: ClientOptions,
  opts: { supportsMessageMoveTask: boolean; required?: readonly O[] },
): Target<O> {
  const checked = requireOutputs(outputs, opts.required ?? [], `stack ${stackName} (${name})`);
  const { sqs, ddb, s3 } = createClients(clients);
  return {
    name,
    stackName,
    outputs: checked,
    sqs,
    ddb,
    s3,
    supportsMessageMoveTask: opts.supportsMessageMoveTask,
    destroy() {
      sqs.destroy();
      ddb.destroy();
      s3.destroy();
    },
  };
}

/** Read a deployed stack's outputs through CloudFormation (AWS, or LocalStack with an endpoint). */
export async function stackOutputs(
  stackName: string,
  region: string,
  endpoint?: string,
  credentials?: { accessKeyId: string; secretAccessKey: string },
): Promise<Record<string, string>> {
  const cfn = new CloudFormationClient({
    region,
    ...(endpoint ? { endpoint } : {}),
    ...(credentials ? { credentials } : {}),
  });
  try {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    return Object.fromEntries(
      (Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue ?? '']),
    );
  } finally {
    cfn.destroy();
  }
}

/** Connect to a stack deployed on LocalStack or AWS (the sandbox's targets come from the sandbox itself). */
export async function connectDeployed<O extends string = never>(
  kind: 'localstack' | 'aws',
  stackName: string,
  region: string,
  opts: { endpoint?: string; required?: readonly O[] } = {},
): Promise<Target<O>> {
  if (kind === 'localstack') {
    const endpoint = opts.endpoint ?? 'http://localhost:4566';
    const credentials = LOCALSTACK_CREDENTIALS;
    return makeTarget(
      'localstack',
      stackName,
      await stackOutputs(stackName, region, endpoint, credentials),
      { region, credentials, endpoints: { sqs: endpoint, dynamodb: endpoint, s3: endpoint } },
      { supportsMessageMoveTask: false, required: opts.required },
    );
  }
  return makeTarget(
    'aws',
    stackName,
    await stackOutputs(stackName, region),
    { region },
    { supportsMessageMoveTask: true, required: opts.required },
  );
}
