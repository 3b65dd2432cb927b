import { describe, expect, it } from 'vitest';
import { claimItem, claimStatement } from '../../functions/kit/claim';
import { leftOf, takeItem } from '../../functions/kit/counter';
import { outputName } from '../../lib/constructs/pipeline-stack';
import { stackQueues } from '../../tooling/queues';

describe('the kit’s naming convention', () => {
  it('names outputs from construct ids without their type suffix', () => {
    expect(outputName('Frontier', 'QueueUrl')).toBe('FrontierQueueUrl');
    expect(outputName('ParseQueue', 'QueueUrl')).toBe('ParseQueueUrl');
    expect(outputName('ParseQueue', 'DlqUrl')).toBe('ParseDlqUrl');
    expect(outputName('PagesTable', 'TableName')).toBe('PagesTableName');
    expect(outputName('Table', 'TableName')).toBe('TableTableName');
    expect(outputName('BodiesBucket', 'BucketName')).toBe('BodiesBucketName');
  });

  it('finds every stage queue of a stack from its outputs, and only pairs with a DLQ', () => {
    expect(
      stackQueues({
        FrontierQueueUrl: 'f',
        FrontierDlqUrl: 'fd',
        ParseQueueUrl: 'p',
        ParseDlqUrl: 'pd',
        OrphanQueueUrl: 'o',
        PagesTableName: 't',
      }),
    ).toEqual([
      { name: 'frontier', queueUrl: 'f', dlqUrl: 'fd' },
      { name: 'parse', queueUrl: 'p', dlqUrl: 'pd' },
    ]);
  });
});

describe('the kit’s DynamoDB building blocks', () => {
  it('takes n only while n are left, and reads what is left from a failed take', () => {
    const counter = { table: 'stock', key: { eventId: 'e' }, attribute: 'left' };
    expect(takeItem(counter, 3).Update).toMatchObject({
      UpdateExpression: 'SET #left = #left - :n',
      ConditionExpression: '#left >= :n',
      ExpressionAttributeNames: { '#left': 'left' },
      ExpressionAttributeValues: { ':n': 3 },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
    expect(leftOf(counter, { left: { N: '2' } })).toBe(2);
    expect(leftOf(counter, { left: 7 })).toBe(7);
    expect(leftOf(counter, { left: { N: '-1' } })).toBe(0);
    expect(leftOf(counter, undefined)).toBe(0);
    expect(leftOf(counter, { left: { N: 'x' } })).toBe(0);
  });

  it('claims only where no item exists under the key', () => {
    expect(claimItem({ table: 't', item: { pk: 'a', v: 1 }, keyAttribute: 'pk' }).Put).toEqual({
      TableName: 't',
      Item: { pk: 'a', v: 1 },
      ConditionExpression: 'attribute_not_exists(#k)',
      ExpressionAttributeNames: { '#k': 'pk' },
      ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
    });
  });
});

describe('the kit’s claim as a PartiQL INSERT', () => {
  it('names every defined attribute once, in order, with its value as a parameter', () => {
    expect(
      claimStatement({
        table: 'urls',
        item: { pk: 'a', n: 2, gone: undefined, z: false },
        keyAttribute: 'pk',
      }),
    ).toEqual({
      Statement: `INSERT INTO "urls" VALUE {'pk': ?, 'n': ?, 'z': ?}`,
      Parameters: ['a', 2, false],
    });
  });
});

describe('the kit’s clients', () => {
  it('makes an SQS client that sends each request once, beside the default ones that retry', async () => {
    const { createClients, singleAttemptSqs } = await import('../../functions/kit/clients');
    const attempts = async (c: { config: { maxAttempts: () => Promise<number> } }) => c.config.maxAttempts();
    expect(await attempts(createClients({ region: 'us-east-1' }).sqs)).toBe(3);
    expect(await attempts(createClients({ region: 'us-east-1', sqsMaxAttempts: 1 }).sqs)).toBe(1);
    expect(await attempts(singleAttemptSqs())).toBe(1);
  });
});
