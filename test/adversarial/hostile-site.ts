import net, { type AddressInfo } from 'node:net';
import zlib from 'node:zlib';

/** What a hostile server does with one request: `socket` is the raw connection, `path` the request path. */
export type Misbehaviour = (socket: net.Socket, path: string) => void;

/** A raw TCP server answering HTTP requests through `reply`; raw, so it can break HTTP at any byte. */
export async function startHostileServer(reply: Misbehaviour) {
  const sockets = new Set<net.Socket>();
  const requests: string[] = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let head = '';
    const onData = (chunk: Buffer) => {
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      const path = head.split(' ')[1] ?? '/';
      requests.push(path);
      reply(socket, path);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    requests,
    /** Connections still open, to check that a client closed its own. */
    sockets,
    stop: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

const CRLF = '\r\n';
export const http = (status: string, headers: Record<string, string | number>, body: Buffer | string = '') =>
  Buffer.concat([
    Buffer.from(
      `HTTP/1.1 ${status}${CRLF}${Object.entries(headers)
        .map(([k, v]) => `${k}: ${v}${CRLF}`)
        .join('')}${CRLF}`,
      'latin1',
    ),
    Buffer.isBuffer(body) ? body : Buffer.from(body),
  ]);

/** robots.txt answered 404 (crawl everything), and the page by `page`. */
export const withRobots404 =
  (page: Misbehaviour): Misbehaviour =>
  (socket, path) =>
    path === '/robots.txt' ? socket.end(http('404 Not Found', { 'content-length': 0 })) : page(socket, path);

/** Repeats `write` every 50 ms until the client goes away. */
export const drip = (socket: net.Socket, write: () => string | Buffer) => {
  const timer = setInterval(() => (socket.writable ? socket.write(write()) : clearInterval(timer)), 50);
  socket.on('close', () => clearInterval(timer));
};

const bomb = (compress: (b: Buffer) => Buffer) => compress(Buffer.alloc(64 * 1024 * 1024));
export const bombs = {
  gzip: () => bomb((b) => zlib.gzipSync(b, { level: 9 })),
  deflate: () => bomb((b) => zlib.deflateSync(b, { level: 9 })),
  br: () => bomb((b) => zlib.brotliCompressSync(b)),
};
