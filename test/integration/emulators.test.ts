import http from 'node:http';
import type net from 'node:net';
import { describe, expect, it } from 'vitest';
import { portTaken, SandboxSetupError, startDynamoDbLocalOnce } from '../../sandbox/emulators';

describe('DynamoDB Local start', () => {
  it('recognises, from the JVM’s own error, a port taken between choosing it and binding it', async () => {
    // Whatever took the port accepts connections and never answers: the start's probes give up on it, and
    // it notices the JVM's exit between them.
    const holder = http.createServer(() => {});
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    const port = (holder.address() as net.AddressInfo).port;
    try {
      const error = await startDynamoDbLocalOnce(port).then(
        (started) => {
          started.child.kill('SIGKILL');
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(SandboxSetupError);
      expect(portTaken(error)).toBe(true);
    } finally {
      holder.close();
    }
    expect(portTaken(new SandboxSetupError('DynamoDB Local did not answer within 60 s'))).toBe(false);
    expect(portTaken(new Error('Address already in use'))).toBe(false);
  });
});
