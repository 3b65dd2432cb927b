import { type MessageAttributeValue, SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';

/** SendMessageBatch takes at most 10 entries; 256 KiB of payload per call is safe on every SQS emulator too. */
const MAX_ENTRIES = 10;
const MAX_BATCH_BYTES = 256 * 1024;

/** What a caller learns of its send: whether the SDK sent the batch more than once (a lost response). */
export interface Sent {
  /** An attempt whose response was lost may have been accepted too: the message may be on the queue twice. */
  readonly resent: boolean;
}

/** A message's attributes, as SendMessage takes them. */
export type MessageAttributes = Record<string, MessageAttributeValue>;

/**
 * A message's size as SQS counts it against its limits and bills it by 64 KiB: the body's UTF-8 bytes, and
 * each attribute's name, data type and value (a binary value's raw bytes).
 */
export function messageBytes(body: string, attributes: MessageAttributes = {}): number {
  let bytes = Buffer.byteLength(body);
  for (const [name, value] of Object.entries(attributes))
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value.DataType ?? '') + attributeValueBytes(value);
  return bytes;
}

/** An attribute value's size: a binary value's raw bytes, a string's UTF-8 bytes. */
export function attributeValueBytes(value: MessageAttributeValue): number {
  return (value.BinaryValue?.byteLength ?? 0) + Buffer.byteLength(value.StringValue ?? '');
}

interface Waiting {
  readonly body: string;
  readonly attributes?: MessageAttributes;
  readonly bytes: number;
  resolve(sent: Sent): void;
  reject(error: Error): void;
}

/**
 * Gathers the messages that records running side by side in one invocation send to the same queue, and
 * sends them with SendMessageBatch: one request (and, downstream, fewer receives) instead of one each.
 *
 * `send` resolves only after the batch holding its message was accepted, so a caller that awaits it
 * never records its work as done before its message is on the queue. A batch goes out as soon as no
 * participant is still working (each is waiting on `send` or has finished), ten messages are waiting, or
 * the oldest waiting message has waited `maxWaitMs`: one slow participant (a slow page of another host)
 * never holds the others' hand-offs for longer than that. Hand-written: Powertools batches receives, not
 * sends.
 */
export class SendBatcher {
  private waiting: Waiting[] = [];
  private working = 0;
  private checkQueued = false;
  private timer: NodeJS.Timeout | undefined;

  /** @param maxWaitMs longest a message waits for batch-mates while other participants work. */
  constructor(
    private readonly queueUrl: string,
    private readonly client: SQSClient,
    private readonly maxWaitMs = 50,
  ) {}

  /** Run one participant's work (for the crawler, one message group's records). */
  async participate<T>(work: () => Promise<T>): Promise<T> {
    this.working++;
    try {
      return await work();
    } finally {
      this.working--;
      this.flushIfIdle();
    }
  }

  /**
   * Wait on something other than an own send (another participant's finished work) without counting as
   * working meanwhile, so the batch that work may be waiting on can go out.
   */
  async whileWaiting<T>(other: Promise<T>): Promise<T> {
    this.working--;
    try {
      this.flushIfIdle();
      return await other;
    } finally {
      this.working++;
    }
  }

  /** Queue a message; resolves when it was sent, rejects with the reason if it was not. */
  async send(body: string, attributes?: MessageAttributes): Promise<Sent> {
    const sent = new Promise<Sent>((resolve, reject) => {
      this.waiting.push({ body, attributes, bytes: messageBytes(body, attributes), resolve, reject });
    });
    this.working--;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.flush(true);
    }, this.maxWaitMs);
    try {
      this.flushIfIdle();
      return await sent;
    } finally {
      this.working++;
    }
  }

  /** Check in a microtask, so participants started in the same synchronous loop all count first. */
  private flushIfIdle(): void {
    if (this.checkQueued) return;
    this.checkQueued = true;
    queueMicrotask(() => {
      this.checkQueued = false;
      this.flush();
    });
  }

  private flush(expired = false): void {
    while (
      this.waiting.length >= MAX_ENTRIES ||
      (this.waiting.length > 0 && (this.working <= 0 || expired))
    ) {
      let bytes = 0;
      let n = 0;
      while (n < this.waiting.length && n < MAX_ENTRIES) {
        const next = this.waiting[n] as Waiting;
        if (n > 0 && bytes + next.bytes > MAX_BATCH_BYTES) break;
        bytes += next.bytes;
        n++;
      }
      void this.sendBatch(this.waiting.splice(0, n));
    }
    if (this.waiting.length === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  private async sendBatch(batch: Waiting[]): Promise<void> {
    try {
      const out = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: batch.map((w, i) => ({
            Id: String(i),
            MessageBody: w.body,
            ...(w.attributes ? { MessageAttributes: w.attributes } : {}),
          })),
        }),
      );
      const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
      const resent = (out.$metadata?.attempts ?? 1) > 1;
      for (const [i, w] of batch.entries()) {
        const f = failed.get(String(i));
        if (f) w.reject(new Error(`SendMessageBatch refused a message: ${f.Code}: ${f.Message ?? ''}`));
        else w.resolve({ resent });
      }
    } catch (error) {
      for (const w of batch) w.reject(error as Error);
    }
  }
}
