import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Where and as whom the clients talk: AWS when endpoints are unset, an emulator or LocalStack otherwise. */
export interface ClientOptions {
  readonly region: string;
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  readonly endpoints?: { readonly sqs?: string; readonly dynamodb?: string; readonly s3?: string };
  /** Attempts per SQS request, the first included. @default the SDK's (3) */
  readonly sqsMaxAttempts?: number;
}

export interface Clients {
  readonly sqs: SQSClient;
  readonly dynamodb: DynamoDBClient;
  /** Document client over `dynamodb`: plain JS values in and out, undefined attributes dropped. */
  readonly ddb: DynamoDBDocumentClient;
  readonly s3: S3Client;
}

/**
 * The one AWS client factory: the functions, the CLI, the sandbox and the tests all build their clients
 * here, so an endpoint or option set for one is set for all.
 */
export function createClients(opts: ClientOptions): Clients {
  const common = { region: opts.region, ...(opts.credentials ? { credentials: opts.credentials } : {}) };
  const e = opts.endpoints ?? {};
  const dynamodb = new DynamoDBClient({ ...common, ...(e.dynamodb ? { endpoint: e.dynamodb } : {}) });
  return {
    // An explicit endpoint stops the SDK from sending to the host inside the queue URL (which emulators may not serve).
    sqs: new SQSClient({
      ...common,
      ...(e.sqs ? { endpoint: e.sqs, useQueueUrlAsEndpoint: false } : {}),
      ...(opts.sqsMaxAttempts ? { maxAttempts: opts.sqsMaxAttempts } : {}),
    }),
    dynamodb,
    ddb: DynamoDBDocumentClient.from(dynamodb, { marshallOptions: { removeUndefinedValues: true } }),
    s3: new S3Client({ ...common, ...(e.s3 ? { endpoint: e.s3, forcePathStyle: true } : {}) }),
  };
}

/**
 * The clients of this process from the SDK's standard variables (AWS_REGION, AWS_ENDPOINT_URL_SQS,
 * AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, or AWS_ENDPOINT_URL), so the same bundle runs on AWS
 * (unset), LocalStack and the sandbox's emulators.
 */
export function clientsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
  extra: Pick<ClientOptions, 'sqsMaxAttempts'> = {},
): Clients {
  const endpoint = (service: 'SQS' | 'DYNAMODB' | 'S3') =>
    env[`AWS_ENDPOINT_URL_${service}`] || env.AWS_ENDPOINT_URL || undefined;
  return createClients({
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    endpoints: { sqs: endpoint('SQS'), dynamodb: endpoint('DYNAMODB'), s3: endpoint('S3') },
    ...extra,
  });
}

let shared: Clients | undefined;
const get = (): Clients => {
  shared ??= clientsFromEnv();
  return shared;
};
/**
 * A client made on first use, not on import: a module that imports these (a handler's helpers, the CLI's
 * crawl API) can be loaded before its environment is set, and one that never sends makes no client.
 * Hand-written: the SDK has no lazy client.
 */
function lazy<T extends object>(pick: (c: Clients) => T): T {
  return new Proxy({} as T, {
    has: (_, prop) => Reflect.has(pick(get()), prop),
    get: (_, prop) => {
      const client = pick(get());
      const value = Reflect.get(client, prop, client);
      return typeof value === 'function' ? value.bind(client) : value;
    },
  });
}

/** Clients for this container, created once on first use. */
export const sqs: SQSClient = lazy((c) => c.sqs);
export const dynamodb: DynamoDBClient = lazy((c) => c.dynamodb);
export const ddb: DynamoDBDocumentClient = lazy((c) => c.ddb);
export const s3: S3Client = lazy((c) => c.s3);

let singleAttempt: SQSClient | undefined;
/**
 * An SQS client that sends each request once. The SDK resends a request whose response was lost, and a
 * send that had gone through is then on the queue twice with nothing to tell them apart; with one attempt
 * the caller sees the failure instead, and its own retry can say the message may be a repeat.
 */
export function singleAttemptSqs(): SQSClient {
  singleAttempt ??= clientsFromEnv(process.env, { sqsMaxAttempts: 1 }).sqs;
  return singleAttempt;
}
