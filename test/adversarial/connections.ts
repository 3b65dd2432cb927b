import net from 'node:net';

export interface Attempt {
  readonly host: string;
  readonly port: number;
  readonly forbidden: boolean;
}

/**
 * Records every TCP connection this process attempts, with the address it would really dial (after the
 * socket's own lookup), and destroys any attempt to an address outside `allowed` before it connects.
 * Inside the suite's network namespace nothing else is reachable anyway; outside it, this is the guard.
 */
export function guardConnections(allowed: () => ReadonlySet<string>) {
  const attempts: Attempt[] = [];
  const original = net.Socket.prototype.connect;
  const judge = (socket: net.Socket, host: string, port: number) => {
    const bare = host.replace(/^\[|\]$/g, '');
    const forbidden = !allowed().has(`${bare}:${port}`);
    attempts.push({ host: bare, port, forbidden });
    if (forbidden) socket.destroy(new Error(`adversarial guard: connection to ${bare}:${port} refused`));
  };
  // biome-ignore lint/suspicious/noExplicitAny: Socket#connect has six overloads; the arguments pass through as they are.
  net.Socket.prototype.connect = function (this: net.Socket, ...args: any[]) {
    const first = args[0];
    const options =
      typeof first === 'object' && first !== null
        ? (first as net.TcpNetConnectOpts & { path?: string })
        : { port: Number(first), host: typeof args[1] === 'string' ? args[1] : 'localhost' };
    if (!options.path) {
      const host = String(options.host ?? 'localhost');
      const port = Number(options.port);
      if (net.isIP(host.replace(/^\[|\]$/g, ''))) judge(this, host, port);
      else this.once('lookup', (err: Error | null, address: string) => !err && judge(this, address, port));
    }
    return original.apply(this, args as Parameters<typeof original>);
  } as typeof original;
  return {
    attempts,
    forbidden: () => attempts.filter((a) => a.forbidden),
    restore: () => {
      net.Socket.prototype.connect = original;
    },
  };
}

/** The emulator endpoints (127.0.0.1:port) named in a function's environment: what a handler may reach. */
export function emulatorAddresses(env: Record<string, string>): Set<string> {
  const addresses = new Set<string>();
  for (const value of Object.values(env))
    for (const m of value.matchAll(/(?:127\.0\.0\.1|localhost):(\d+)/g)) addresses.add(`127.0.0.1:${m[1]}`);
  return addresses;
}

/** Servers listening on the forbidden addresses the namespace added to loopback; any accept is a bypass. */
export async function startCanaries(addresses: readonly string[], ports: readonly number[]) {
  const hits: string[] = [];
  const servers: net.Server[] = [];
  for (const address of addresses) {
    for (const port of ports) {
      const server = net.createServer((socket) => {
        hits.push(`${address}:${port}`);
        socket.destroy();
      });
      const ok = await new Promise<boolean>((resolve) => {
        server.once('error', () => resolve(false));
        server.listen(port, address, () => resolve(true));
      });
      if (ok) servers.push(server);
    }
  }
  return {
    hits,
    listening: servers.length,
    stop: () => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))),
  };
}
