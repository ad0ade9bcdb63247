import { createServer } from 'node:net';

/**
 * A TCP port of 127.0.0.1 that is free right now: bind port 0, read it, close. For test servers
 * and CLI stand-ins that need a port number up front, and for "nobody listens there" cases.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.listen(0, '127.0.0.1', resolve).once('error', reject));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}
