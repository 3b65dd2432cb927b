import { promisify } from 'node:util';
import zlib from 'node:zlib';
import pLimit from 'p-limit';

const brotli = promisify(zlib.brotliCompress);
const unbrotli = promisify(zlib.brotliDecompress);

/**
 * Brotli quality 4. On the bench's 67 KB pages (18 KB compressed, the median web page) it takes 0.9 ms of
 * CPU against 1.6 at quality 5, for 2.4% more bytes. Qualities 2 and 3 take 0.5 ms, but on real HTML (40
 * rustdoc pages, Node 24) their output was 5 to 7% larger than quality 4's: at the crawler's memory Lambda
 * bills 0.4 ms of CPU at about $0.01 per million pages, and SQS the extra bytes at about twice that.
 */
const QUALITY = 4;

/** SQS's largest message (1 MiB), less room for the parse envelope around the body (URLs, ids, type). */
export const SQS_MAX_MESSAGE_BYTES = 1024 * 1024;
const ENVELOPE_RESERVE_BYTES = 16 * 1024;

/**
 * Compressions of one environment at once. Each Brotli encoder holds its window and hash tables (about
 * 9 MB for a 2 MiB page) until it is done, and a crawler batch may bring ten such pages: ten encoders side
 * by side took 88 MB, two took 39, for the same CPU. At the crawler's 256 MB, Lambda gives a seventh of a
 * vCPU, so more at once would only hold more memory.
 */
const compressions = pLimit(2);

/** How a body travels to the parser: in the parse message's binary attribute, or through S3. */
export type HandOffPlan = { kind: 'attribute' | 's3'; compressed: Buffer };

/**
 * Decide how a body travels to the parser: in the message's binary attribute when it fits under
 * `inlineMaxBytes` compressed, otherwise as a claim check in S3. Each 64 KiB of an SQS message is billed as
 * one request, so the limit is a cost knob as well as a size guard.
 */
export async function planHandOff(body: Buffer, inlineMaxBytes: number): Promise<HandOffPlan> {
  const compressed = await compressions(() =>
    brotli(body, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: QUALITY,
        // The encoder sizes its buffers to the input: 10-15% less CPU on a 65 KB page, the same output.
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
      },
    }),
  );
  // However the threshold is configured, a body in the message must leave its envelope room under SQS's limit.
  const limit = Math.min(inlineMaxBytes, SQS_MAX_MESSAGE_BYTES - ENVELOPE_RESERVE_BYTES);
  return { kind: compressed.length <= limit ? 'attribute' : 's3', compressed };
}

/** Inverse of the hand-off, for the parser: the raw body bytes. */
export async function decompressBody(compressed: Buffer): Promise<Buffer> {
  return unbrotli(compressed);
}
