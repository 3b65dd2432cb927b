import { describe, expect, it } from 'vitest';
import { firstSendKeys } from '../../functions/crawler/url-idempotency';

// Which URL records a first receive may leave unread: only those of URLs sent for the first time.
describe('firstSendKeys', () => {
  const a = { crawlId: 'c', url: 'http://h.example/a' };
  const b = { crawlId: 'c', url: 'http://h.example/b' };
  const first = (key: typeof a) => ({ key, payload: { fresh: true as const }, receiveCount: 1 });

  it('leaves unread a URL whose messages are all first sends on their first receive', () => {
    expect(firstSendKeys([first(a), first(b)])).toEqual([a, b]);
    expect(firstSendKeys([first(a), first({ ...a })])).toEqual([a]);
  });

  it('reads a URL sent without the mark, requeued after an attempt, or received before', () => {
    expect(firstSendKeys([{ key: a, payload: {}, receiveCount: 1 }])).toEqual([]);
    expect(firstSendKeys([{ key: a, payload: { fresh: true, attempts: 1 }, receiveCount: 1 }])).toEqual([]);
    expect(firstSendKeys([{ key: a, payload: { fresh: true }, receiveCount: 2 }])).toEqual([]);
  });

  it('reads a URL that has any other message in the receive, whichever comes first', () => {
    const resend = { key: { ...a }, payload: {}, receiveCount: 1 };
    expect(firstSendKeys([first(a), resend, first(b)])).toEqual([b]);
    expect(firstSendKeys([resend, first(a)])).toEqual([]);
    expect(firstSendKeys([first(a), { key: a, payload: { fresh: true }, receiveCount: 3 }])).toEqual([]);
  });

  it('tells crawls apart', () => {
    const other = { crawlId: 'd', url: a.url };
    expect(firstSendKeys([first(a), { key: other, payload: {}, receiveCount: 1 }])).toEqual([a]);
  });
});
