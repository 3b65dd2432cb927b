import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * AWS clients, created once per container. Endpoints come from the SDK's standard variables
 * (AWS_ENDPOINT_URL_SQS, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3, or AWS_ENDPOINT_URL), so the same
 * bundle runs on AWS (unset), LocalStack and the sandbox's emulators.
 */
const region = process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';

function endpoint(service: 'SQS' | 'DYNAMODB' | 'S3'): string | undefined {
  return process.env[`AWS_ENDPOINT_URL_${service}`] || process.env.AWS_ENDPOINT_URL || undefined;
}

const sqsEndpoint = endpoint('SQS');
// An explicit endpoint stops the SDK from sending to the host inside the queue URL (which emulators may not serve).
export const sqs = new SQSClient({
  region,
  ...(sqsEndpoint ? { endpoint: sqsEndpoint, useQueueUrlAsEndpoint: false } : {}),
});

const ddbEndpoint = endpoint('DYNAMODB');
export const dynamodb = new DynamoDBClient({ region, ...(ddbEndpoint ? { endpoint: ddbEndpoint } : {}) });
export const ddb = DynamoDBDocumentClient.from(dynamodb, {
  marshallOptions: { removeUndefinedValues: true },
});

const s3Endpoint = endpoint('S3');
export const s3 = new S3Client({
  region,
  ...(s3Endpoint ? { endpoint: s3Endpoint, forcePathStyle: true } : {}),
});
