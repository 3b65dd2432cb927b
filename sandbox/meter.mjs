// Request meter for the benchmark: an SDK middleware on every AWS SDK client in this thread, counting
// requests by service and operation with their billed units. Plain JS so the worker loads it without a loader.
import { Client } from '@smithy/core/client';

const CHUNK = 64 * 1024;
const DDB_READS = new Set([
  'GetItemCommand',
  'BatchGetItemCommand',
  'QueryCommand',
  'ScanCommand',
  'GetCommand',
  'BatchGetCommand',
]);
const DDB_WRITES = new Set([
  'PutItemCommand',
  'UpdateItemCommand',
  'DeleteItemCommand',
  'BatchWriteItemCommand',
  'PutCommand',
  'UpdateCommand',
  'DeleteCommand',
  'BatchWriteCommand',
]);
const DDB_TRANSACTIONS = new Set(['TransactWriteItemsCommand', 'TransactWriteCommand']);
/**
 * A transactional write bills two write units per item (per KB; these items are small). Counted from the
 * request: DynamoDB Local reports 2 units for a whole transaction whatever its size. A cancelled one is
 * counted the same way, to err on the side of cost (whether AWS bills it in full is not documented).
 */
const transactionUnits = (input) => 2 * (input?.TransactItems?.length ?? 1);
const DDB_STATEMENTS = new Set(['BatchExecuteStatementCommand']);
/**
 * Each statement of a BatchExecuteStatement bills as its own single-item request: a write unit for an
 * UPDATE, INSERT or DELETE (these items are under 1 KB), a read unit for a SELECT. Counted from the request,
 * failed statements included: DynamoDB Local reports no capacity for it.
 */
const statementUnits = (input) => {
  const statements = input?.Statements ?? [];
  const selects = statements.filter((s) => /^\s*select\b/i.test(s.Statement ?? '')).length;
  return { writes: statements.length - selects, reads: selects };
};

/** @returns {Record<string, {requests: number, units: number}>} */
export function newCounts() {
  return {};
}

function add(counts, key, requests, units) {
  counts[key] ??= { requests: 0, units: 0 };
  const c = counts[key];
  c.requests += requests;
  c.units += units;
}

const bytes = (s) => Buffer.byteLength(s ?? '', 'utf8');
const sqsChunks = (n) => Math.max(1, Math.ceil(n / CHUNK));
/**
 * A message's billed size: its body and, per attribute, name, data type and value, a binary value at its raw
 * size (SQS's API reference counts all three parts of an attribute in a message's size).
 */
const messageBytes = (body, attributes) => {
  let n = bytes(body);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    n += bytes(name) + bytes(value.DataType);
    if (value.StringValue !== undefined) n += bytes(value.StringValue);
    if (value.BinaryValue) n += value.BinaryValue.byteLength ?? bytes(value.BinaryValue);
  }
  return n;
};

function capacity(output) {
  const cc = output?.ConsumedCapacity;
  const list = Array.isArray(cc) ? cc : cc ? [cc] : [];
  return list.reduce((n, c) => n + (c.CapacityUnits ?? 0), 0);
}

/** Add the meter middleware to one client; `also`, if given, counts the same requests a second time. */
export function meterClient(client, counts, also) {
  if (client.__meterInstalled) return;
  client.__meterInstalled = true;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const service = String(context.clientName ?? 'unknown').replace(/(Document)?Client$/, '');
      const op = String(context.commandName ?? 'unknown');
      const isRead = DDB_READS.has(op);
      const isWrite = DDB_WRITES.has(op);
      if ((isRead || isWrite) && args.input && !args.input.ReturnConsumedCapacity)
        args.input.ReturnConsumedCapacity = 'TOTAL';
      // SQS prices FIFO and standard requests differently, so its keys carry the queue type.
      const queueUrl = service === 'SQS' ? String(args.input?.QueueUrl ?? '') : '';
      const suffix = service === 'SQS' ? (queueUrl.endsWith('.fifo') ? ' (fifo)' : ' (standard)') : '';
      const key = `${service}.${op.replace(/Command$/, '')}${suffix}`;
      if (DDB_STATEMENTS.has(op)) {
        // Reads and writes bill differently, so a batch's statements are counted under two keys.
        const { writes, reads } = statementUnits(args.input);
        try {
          return await next(args);
        } finally {
          for (const [k, units] of [
            [`${key} (write)`, writes],
            [`${key} (read)`, reads],
          ]) {
            if (units === 0) continue;
            add(counts, k, 1, units);
            if (also) add(also, k, 1, units);
          }
        }
      }
      try {
        const result = await next(args);
        const out = result.output;
        let units = 1;
        if (DDB_TRANSACTIONS.has(op)) units = transactionUnits(args.input);
        else if (isRead || isWrite) units = capacity(out);
        else if (op === 'SendMessageCommand')
          units = sqsChunks(messageBytes(args.input.MessageBody, args.input.MessageAttributes));
        else if (op === 'SendMessageBatchCommand')
          units = sqsChunks(
            args.input.Entries.reduce((n, e) => n + messageBytes(e.MessageBody, e.MessageAttributes), 0),
          );
        else if (op === 'ReceiveMessageCommand')
          units = sqsChunks(
            (out.Messages ?? []).reduce((n, m) => n + messageBytes(m.Body, m.MessageAttributes), 0),
          );
        add(counts, key, 1, units);
        if (also) add(also, key, 1, units);
        return result;
      } catch (error) {
        // A failed conditional write is still billed: at least one write unit.
        const billed = DDB_TRANSACTIONS.has(op)
          ? transactionUnits(args.input)
          : isWrite
            ? 1
            : isRead
              ? 0.5
              : 1;
        add(counts, key, 1, billed);
        if (also) add(also, key, 1, billed);
        throw error;
      }
    },
    { step: 'initialize', name: 'benchRequestMeter' },
  );
}

/** Meter every client in this thread (a sandbox worker): hooks send to add the middleware on first use. */
export function installMeter(counts) {
  const send = Client.prototype.send;
  Client.prototype.send = function meteredSend(command, ...rest) {
    meterClient(this, counts);
    return send.call(this, command, ...rest);
  };
}

export function mergeCounts(into, from) {
  for (const [k, v] of Object.entries(from)) add(into, k, v.requests, v.units);
}
