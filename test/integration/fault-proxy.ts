import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FaultRates {
  /** Answer 500 without forwarding. */
  readonly error: number;
  /** Answer a throttling error without forwarding (DynamoDB's ProvisionedThroughputExceeded). */
  readonly throttle: number;
  /** Forward, let the emulator commit, then cut the connection before the response: the SDK resends. */
  readonly dropAfterCommit: number;
  /** Hold the request 100-600 ms before forwarding (late commits). */
  readonly delay: number;
}

/** Answer as a service's 500 does, without forwarding the request. */
function internalFailure(res: http.ServerResponse, message: string): void {
  res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' });
  res.end(JSON.stringify({ __type: 'InternalFailure', message }));
}

/**
 * An HTTP proxy in front of an emulator that injects the faults a managed service shows under load:
 * errors, throttling, a committed request whose response is lost, and delays. Seeded, so a failing run can
 * be replayed. The functions reach the emulators only through it (their AWS_ENDPOINT_URL_* point here).
 */
export async function startFaultProxy(initial: FaultRates, seed: number) {
  let upstream: URL | undefined;
  let rates = initial;
  let x = seed >>> 0 || 1;
  const random = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const counts = { requests: 0, error: 0, throttle: 0, dropAfterCommit: 0, delay: 0, targeted: 0 };
  // Requests to fail on purpose, whatever the draw: a fault a test needs to happen at least once.
  const targets: Array<{ match: (operation: string, body: string) => boolean; left: number }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      counts.requests++;
      const body = Buffer.concat(chunks);
      const r = random();
      const operation = String(req.headers['x-amz-target'] ?? '');
      const target = targets.find((t) => t.left > 0 && t.match(operation, body.toString('utf8')));
      if (target) {
        target.left--;
        counts.targeted++;
        return internalFailure(res, 'injected fault (targeted)');
      }
      // Cumulative thresholds: one draw picks at most one fault.
      const errorEdge = rates.error;
      const throttleEdge = errorEdge + rates.throttle;
      const dropEdge = throttleEdge + rates.dropAfterCommit;
      if (r < errorEdge) {
        counts.error++;
        return internalFailure(res, 'injected fault');
      }
      if (r < throttleEdge) {
        counts.throttle++;
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        return void res.end(
          JSON.stringify({
            __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
            message: 'injected throttle',
          }),
        );
      }
      const drop = r < dropEdge;
      if (!drop && r < dropEdge + rates.delay) {
        counts.delay++;
        await new Promise((done) => setTimeout(done, 100 + Math.floor(random() * 500)));
      }
      if (!upstream) return void res.writeHead(503).end();
      const forward = http.request(
        {
          host: upstream.hostname,
          port: upstream.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (up) => {
          const parts: Buffer[] = [];
          up.on('data', (c: Buffer) => parts.push(c));
          up.on('end', () => {
            if (drop) {
              counts.dropAfterCommit++;
              return void req.socket.destroy();
            }
            res.writeHead(up.statusCode ?? 502, up.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      forward.on('error', () => res.destroy());
      forward.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    counts,
    setUpstream(url: string) {
      upstream = new URL(url);
    },
    /**
     * Answer the next `times` requests that `match` (by the X-Amz-Target operation and the body) with a 500,
     * without forwarding them, besides the seeded faults.
     */
    failNext(match: (operation: string, body: string) => boolean, times = 1) {
      targets.push({ match, left: times });
    },
    /** Change the fault rates, e.g. to end the outage before an operator's redrive. */
    setRates(next: FaultRates) {
      rates = next;
    },
    stop: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
