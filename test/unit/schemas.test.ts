import { describe, expect, it } from 'vitest';
import { frontierMessage } from '../../functions/crawl/frontier';
import { FrontierMessage, ParseMessage } from '../../functions/crawl/schemas';
import { looseIds, parseMessage } from '../../functions/kit/envelope';
import { InvalidMessageError } from '../../functions/kit/errors';

const valid = frontierMessage('crawl-1', 'corr-1', { url: 'http://a.example/', depth: 0 });

/** A valid parse message with an inline body. */
const parse = {
  type: 'parse.page',
  version: 1,
  crawlId: 'c1',
  correlationId: 'k1',
  sentAt: '2026-11-23T00:00:00.000Z',
  payload: {
    url: 'http://a.example/',
    finalUrl: 'http://a.example/',
    depth: 0,
    httpStatus: 200,
    contentType: 'text/html',
    fetchedAt: 1,
    body: { kind: 'inline', encoding: 'br', data: '' },
  },
};

describe('message schemas', () => {
  it('accepts what the producer helper builds', () => {
    expect(parseMessage(FrontierMessage, JSON.stringify(valid))).toEqual(valid);
  });

  it.each([
    ['malformed JSON', '{"type":', /body is not JSON/],
    ['a wrong type', JSON.stringify({ ...valid, type: 'parse.page' }), /type: Invalid input/],
    ['an unknown version', JSON.stringify({ ...valid, version: 2 }), /version: Invalid input/],
    ['a missing crawlId', JSON.stringify({ ...valid, crawlId: undefined }), /crawlId/],
    ['a crawlId with unsafe characters', JSON.stringify({ ...valid, crawlId: 'a/b' }), /crawlId may hold/],
    [
      'a non-http URL',
      JSON.stringify({ ...valid, payload: { url: 'file:///etc/passwd', depth: 0 } }),
      /payload.url: must be an absolute http\(s\) URL/,
    ],
    [
      'a negative depth',
      JSON.stringify({ ...valid, payload: { url: 'http://a.example/', depth: -1 } }),
      /payload.depth/,
    ],
    ['a bad timestamp', JSON.stringify({ ...valid, sentAt: 'yesterday' }), /sentAt/],
  ])('rejects %s with an InvalidMessageError naming the field', (_name, body, message) => {
    expect(() => parseMessage(FrontierMessage, body)).toThrow(InvalidMessageError);
    expect(() => parseMessage(FrontierMessage, body)).toThrow(message);
  });

  it('rejects a parse message whose body reference is neither inline nor S3', () => {
    const msg = { ...parse, payload: { ...parse.payload, body: { kind: 'ftp' } } };
    expect(() => parseMessage(ParseMessage, JSON.stringify(msg))).toThrow(/payload.body.kind/);
  });

  it('recovers ids from an invalid message for its log line, and nothing from garbage', () => {
    expect(looseIds(JSON.stringify({ crawlId: 'c9', correlationId: 'x' }))).toEqual({
      crawlId: 'c9',
      correlationId: 'x',
    });
    expect(looseIds('not json')).toEqual({});
  });
});

describe('message schema details', () => {
  it('accepts both body kinds and nothing else', () => {
    expect(parseMessage(ParseMessage, JSON.stringify(parse)).payload.body.kind).toBe('inline');
    const s3 = {
      ...parse,
      payload: { ...parse.payload, body: { kind: 's3', encoding: 'br', bucket: 'b', key: 'k' } },
    };
    expect(parseMessage(ParseMessage, JSON.stringify(s3)).payload.body).toEqual({
      kind: 's3',
      encoding: 'br',
      bucket: 'b',
      key: 'k',
    });
    for (const body of [
      { kind: 'inline', encoding: 'gzip', data: '' },
      { kind: 's3', encoding: 'br', bucket: '', key: 'k' },
      { kind: 'url', encoding: 'br', data: '' },
    ])
      expect(() =>
        parseMessage(ParseMessage, JSON.stringify({ ...parse, payload: { ...parse.payload, body } })),
      ).toThrow(InvalidMessageError);
  });

  it.each(['https://a.example/', 'http://a.example/x?y=1'])('accepts the web URL %s', (url) => {
    expect(
      parseMessage(FrontierMessage, JSON.stringify({ ...valid, payload: { url, depth: 0 } })).payload.url,
    ).toBe(url);
  });

  it.each(['xhttp://a.example/', 'http+unix://a.example/', 'https2://a.example/', 'not a url'])(
    'rejects %s as not an absolute http(s) URL',
    (url) => {
      expect(() =>
        parseMessage(FrontierMessage, JSON.stringify({ ...valid, payload: { url, depth: 0 } })),
      ).toThrow('payload.url: must be an absolute http(s) URL');
    },
  );

  it('names the root when the whole body is the wrong shape', () => {
    expect(() => parseMessage(FrontierMessage, '42')).toThrow('schema validation failed: (root):');
  });

  it('takes bounded ids from a message it could not validate, and nothing from other shapes', () => {
    expect(
      looseIds(JSON.stringify({ crawlId: 'c'.repeat(100), correlationId: 'k'.repeat(200), url: 'u' })),
    ).toEqual({ crawlId: 'c'.repeat(100), correlationId: 'k'.repeat(128) });
    // Any pipeline's ids, by the "…Id" naming rule; never other fields or non-strings.
    expect(looseIds(JSON.stringify({ eventId: 'e1', userId: 'u1', answers: 'x' }))).toEqual({
      eventId: 'e1',
      userId: 'u1',
    });
    expect(looseIds(JSON.stringify({ crawlId: 7, correlationId: ['x'] }))).toEqual({});
    expect(looseIds('[1]')).toEqual({});
    expect(looseIds('{not json')).toEqual({});
  });
});
