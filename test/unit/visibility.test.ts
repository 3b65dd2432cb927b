import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { describe, expect, it, vi } from 'vitest';
import {
  EXCLUSIVE_MARGIN_MS,
  hiddenUntil,
  receivedExclusively,
  SourceVisibility,
} from '../../functions/kit/visibility';

const record = (receives: number, firstReceivedAt: number | string): SQSRecord =>
  ({
    messageId: `m-${receives}-${firstReceivedAt}`,
    attributes: {
      ApproximateReceiveCount: String(receives),
      ApproximateFirstReceiveTimestamp: String(firstReceivedAt),
    },
  }) as unknown as SQSRecord;

describe('hiddenUntil', () => {
  it('is the earliest first receive plus the visibility timeout, for records on their first receive', () => {
    expect(hiddenUntil([record(1, 5_000), record(1, 4_000)], 360)).toBe(4_000 + 360_000);
  });
  it('is unknown once any record was received before, or without a timeout or a timestamp', () => {
    expect(hiddenUntil([record(1, 5_000), record(2, 5_000)], 360)).toBeUndefined();
    expect(hiddenUntil([record(1, 5_000)], undefined)).toBeUndefined();
    expect(hiddenUntil([record(1, 'x')], 360)).toBeUndefined();
    expect(hiddenUntil([record(1, 0)], 360)).toBeUndefined();
    expect(hiddenUntil([], 360)).toBeUndefined();
  });
});

describe('receivedExclusively', () => {
  const received = 1_000_000;
  it('holds when the records stay hidden past the deadline by the margin', () => {
    const deadline = received + 360_000 - EXCLUSIVE_MARGIN_MS;
    expect(receivedExclusively([record(1, received)], 360, deadline)).toBe(true);
    expect(receivedExclusively([record(1, received)], 360, deadline + 1)).toBe(false);
  });
  it('does not hold for a short visibility timeout, a redelivery, or an unknown timeout', () => {
    expect(receivedExclusively([record(1, received)], 2, received + 60_000)).toBe(false);
    expect(receivedExclusively([record(3, received)], 360, received + 60_000)).toBe(false);
    expect(receivedExclusively([record(1, received)], undefined, received + 60_000)).toBe(false);
  });
});

/** An SQS client whose GetQueueAttributes answers come from `answers`, in turn (the last one repeats). */
function client(...answers: Array<Record<string, string> | Error>) {
  const send = vi.fn(async (command: unknown) => {
    expect(command).toBeInstanceOf(GetQueueAttributesCommand);
    const answer = answers[Math.min(send.mock.calls.length - 1, answers.length - 1)];
    if (answer instanceof Error) throw answer;
    return { Attributes: answer };
  });
  return { sqs: { send } as unknown as SQSClient, send };
}

describe('SourceVisibility', () => {
  it('asks the queue once, and again after its minute', async () => {
    const { sqs, send } = client({ VisibilityTimeout: '360' }, { VisibilityTimeout: '30' });
    const v = new SourceVisibility('https://sqs.example/q', sqs);
    expect(await v.seconds(0)).toBe(360);
    expect(await v.seconds(59_999)).toBe(360);
    expect(send).toHaveBeenCalledTimes(1);
    expect(await v.seconds(60_000)).toBe(30);
    expect((send.mock.calls[0] as unknown as [GetQueueAttributesCommand])[0].input).toEqual({
      QueueUrl: 'https://sqs.example/q',
      AttributeNames: ['VisibilityTimeout'],
    });
  });

  it('is unknown when the call fails or answers nonsense, and asks again within seconds', async () => {
    const { sqs, send } = client(new Error('AccessDenied'), {});
    const v = new SourceVisibility('https://sqs.example/q', sqs);
    expect(await v.seconds(0)).toBeUndefined();
    expect(await v.seconds(4_999)).toBeUndefined();
    expect(send).toHaveBeenCalledTimes(1);
    expect(await v.seconds(5_000)).toBeUndefined();
    expect(send).toHaveBeenCalledTimes(2);
  });

  it('is unknown without a queue URL, and makes no call', async () => {
    const { sqs, send } = client({ VisibilityTimeout: '360' });
    expect(await new SourceVisibility(undefined, sqs).seconds()).toBeUndefined();
    expect(send).not.toHaveBeenCalled();
  });
});
