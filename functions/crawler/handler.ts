import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';

export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  throw new Error(`not implemented yet: ${event.Records.length} records`);
};
