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
  /** Set for an item sent with `sendItem`, which the packing puts in a message with its batch-mates. */
  readonly item?: unknown;
  resolve(sent: Sent): void;
  reject(error: Error): void;
}

/** One message of a request, and the sends it answers. */
interface Outgoing {
  readonly body: string;
  readonly attributes?: MessageAttributes;
  readonly bytes: number;
  readonly members: readonly Waiting[];
}

/**
 * How items sent together share messages: `pack` returns the message bodies that carry `items`, each with
 * the indexes of the items it carries (every item in exactly one), each body within SQS's message size.
 */
export interface Packing<T> {
  pack(items: readonly T[]): Array<{ readonly body: string; readonly items: readonly number[] }>;
}

/**
 * Gathers the messages that records running side by side in one invocation send to the same queue, and
 * sends them with SendMessageBatch: one request (and, downstream, fewer receives) instead of one each.
 * Given a `Packing`, it also puts small items of those records in shared messages (`sendItem`).
 *
 * `send` resolves only after the batch holding its message was accepted, so a caller that awaits it
 * never records its work as done before its message is on the queue. A batch goes out as soon as no
 * participant is still working (each is waiting on `send` or has finished), ten messages are waiting, or
 * the oldest waiting message has waited `maxWaitMs`: one slow participant (a slow page of another host)
 * never holds the others' hand-offs for longer than that. Packed items wait for the first or the last of
 * these, so they are packed once. Hand-written: Powertools batches receives, not sends.
 */
export class SendBatcher<T = never> {
  private waiting: Waiting[] = [];
  private working = 0;
  private checkQueued = false;
  private timer: NodeJS.Timeout | undefined;

  /**
   * @param maxWaitMs longest a message waits for batch-mates while other participants work.
   * @param packing how items given to `sendItem` share messages (each `send` is a message of its own).
   */
  constructor(
    private readonly queueUrl: string,
    private readonly client: SQSClient,
    private readonly maxWaitMs = 50,
    private readonly packing?: Packing<T>,
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
  send(body: string, attributes?: MessageAttributes): Promise<Sent> {
    return this.enqueue({ body, attributes, bytes: messageBytes(body, attributes) });
  }

  /**
   * Queue an item that the packing puts in one message with the items sent beside it (one message, one
   * receive and one delete downstream for many); resolves when that message was sent, rejects with the
   * reason if it was not, as every item of the message does.
   */
  sendItem(item: T): Promise<Sent> {
    if (!this.packing) throw new Error('SendBatcher.sendItem needs a packing');
    return this.enqueue({ body: '', bytes: 0, item });
  }

  private async enqueue(message: Pick<Waiting, 'body' | 'attributes' | 'bytes' | 'item'>): Promise<Sent> {
    const sent = new Promise<Sent>((resolve, reject) => {
      this.waiting.push({ ...message, resolve, reject });
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
    const idle = this.working <= 0 || expired;
    // Ten messages of their own make a full request; packed items share messages, so they wait for idle.
    const full = this.waiting.filter((w) => w.item === undefined).length >= MAX_ENTRIES;
    if (full || (this.waiting.length > 0 && idle)) {
      const outgoing = this.messages(this.waiting.splice(0));
      // While others work, only full requests go; the rest waits for batch-mates (or the timer).
      while (outgoing.length > 0 && (idle || outgoing.length >= MAX_ENTRIES)) {
        let bytes = 0;
        let n = 0;
        while (n < outgoing.length && n < MAX_ENTRIES) {
          const next = outgoing[n] as Outgoing;
          if (n > 0 && bytes + next.bytes > MAX_BATCH_BYTES) break;
          bytes += next.bytes;
          n++;
        }
        void this.sendBatch(outgoing.splice(0, n));
      }
      this.waiting.unshift(...outgoing.flatMap((m) => m.members));
    }
    if (this.waiting.length === 0 && this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  /** The messages that carry these sends: a message each, and the items packed together. */
  private messages(waiting: readonly Waiting[]): Outgoing[] {
    const own = waiting.filter((w) => w.item === undefined);
    const items = waiting.filter((w) => w.item !== undefined);
    const out: Outgoing[] = own.map((w) => ({ ...w, members: [w] }));
    if (items.length > 0 && this.packing)
      for (const packed of this.packing.pack(items.map((w) => w.item as T)))
        out.push({
          body: packed.body,
          bytes: Buffer.byteLength(packed.body),
          members: packed.items.map((i) => items[i] as Waiting),
        });
    return out;
  }

  private async sendBatch(batch: readonly Outgoing[]): Promise<void> {
    try {
      const out = await this.client.send(
        new SendMessageBatchCommand({
          QueueUrl: this.queueUrl,
          Entries: batch.map((m, i) => ({
            Id: String(i),
            MessageBody: m.body,
            ...(m.attributes ? { MessageAttributes: m.attributes } : {}),
          })),
        }),
      );
      const failed = new Map((out.Failed ?? []).map((f) => [f.Id, f]));
      const resent = (out.$metadata?.attempts ?? 1) > 1;
      for (const [i, m] of batch.entries()) {
        const f = failed.get(String(i));
        for (const w of m.members)
          if (f) w.reject(new Error(`SendMessageBatch refused a message: ${f.Code}: ${f.Message ?? ''}`));
          else w.resolve({ resent });
      }
    } catch (error) {
      for (const m of batch) for (const w of m.members) w.reject(error as Error);
    }
  }
}
