import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpFetch } from '../../src/policy/http-fetch.js';

let server: http.Server;
let base: string;
const seen: { method?: string; headers: http.IncomingHttpHeaders; body: string }[] = [];

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      seen.push({ method: req.method, headers: req.headers, body });
      if (req.url === '/echo') {
        res.writeHead(201, { 'content-type': 'application/json', 'retry-after': '3', 'set-cookie': ['a=1', 'b=2'] });
        res.end(JSON.stringify({ got: JSON.parse(body) }));
      } else if (req.url === '/cut') {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial":');
        setTimeout(() => res.socket?.destroy(), 20);
      } else if (req.url === '/hang') {
        // never answers
      } else res.socket?.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe('the policy transport over node:http', () => {
  it('sends the method, headers and body, and answers with the status, every header and the body', async () => {
    const response = await httpFetch(`${base}/echo`, { method: 'POST', headers: new Headers({ 'content-type': 'application/json', authorization: 'Bearer x' }), body: '{"n":"é"}' });
    expect(response.status).toBe(201);
    expect(response.headers.get('retry-after')).toBe('3');
    expect(response.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await response.json()).toEqual({ got: { n: 'é' } });
    const sent = seen.at(-1)!;
    expect(sent).toMatchObject({ method: 'POST', body: '{"n":"é"}' });
    expect(sent.headers).toMatchObject({ authorization: 'Bearer x', 'content-length': String(Buffer.byteLength('{"n":"é"}')) });
  });

  it('fails the body, not the request, when the connection breaks off after the headers', async () => {
    const response = await httpFetch(`${base}/cut`, { method: 'POST', body: '{}' });
    expect(response.status).toBe(200);
    await expect(response.text()).rejects.toThrow(/terminated/);
  });

  it('rejects a dropped or refused connection with the system error as cause, and an aborted signal with an AbortError', async () => {
    const dropped = (await httpFetch(`${base}/drop`, { method: 'POST', body: '{}' }).catch((e: unknown) => e)) as Error;
    expect(dropped).toBeInstanceOf(TypeError);
    expect((dropped.cause as NodeJS.ErrnoException).code).toBe('ECONNRESET');
    const refused = (await httpFetch('http://127.0.0.1:1/x').catch((e: unknown) => e)) as Error;
    expect((refused.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('the attempt timed out')), 50);
    const aborted = (await httpFetch(`${base}/hang`, { method: 'POST', body: '{}', signal: controller.signal }).catch((e: unknown) => e)) as Error;
    expect(aborted.name).toBe('AbortError');
    await expect(httpFetch(`${base}/echo`, { body: new Uint8Array(2) as unknown as string })).rejects.toThrow(/string bodies only/);
  });
});
