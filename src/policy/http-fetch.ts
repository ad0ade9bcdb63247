import http from 'node:http';
import https from 'node:https';

/**
 * The OpenAI client's transport: a `fetch` over node:http with kept-alive connections, for the
 * policy's chat completions (a JSON body out, a JSON body back).
 *
 * Why not the global fetch (undici): its request and response pass through web streams and the
 * fetch algorithm's bookkeeping; on this machine it cost 0.5 ms of the loop's thread per call warm
 * and 1.3 ms cold, node:http 0.2–0.3 ms (issue 26: every call of every trajectory pays it). The
 * contract the client relies on is kept: a refused or dropped connection rejects with the system
 * error as `cause`; an aborted signal rejects with an `AbortError`; the answer is a Response whose
 * body errors if the connection breaks off after the headers (the client's "mid-answer" case).
 */

/**
 * Kept-alive connections, closed after 4 s idle (undici's default): a server that closes an idle
 * connection first (uvicorn after 5 s) would otherwise see the next request on it reset. A request
 * in flight is not limited by it (the attempt's own timeout is the client's).
 */
const IDLE_MS = 4_000;
const agents = {
  'http:': new http.Agent({ keepAlive: true, timeout: IDLE_MS }),
  'https:': new https.Agent({ keepAlive: true, timeout: IDLE_MS }),
};

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  const err = new Error(reason instanceof Error ? reason.message : 'This operation was aborted', { cause: reason });
  err.name = 'AbortError';
  return err;
}

function requestHeaders(headers: RequestInit['headers'], body: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  new Headers(headers).forEach((value, name) => (out[name] = value));
  if (body !== undefined) out['content-length'] = String(Buffer.byteLength(body));
  return out;
}

function responseHeaders(raw: http.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}

/** `fetch` for string bodies over node:http(s); anything else is refused, never sent half-understood. */
export async function httpFetch(input: string | URL | Request, init: RequestInit = {}): Promise<Response> {
  if (input instanceof Request) throw new TypeError('httpFetch takes a URL, not a Request');
  const url = new URL(input);
  const agent = agents[url.protocol as keyof typeof agents];
  if (!agent) throw new TypeError(`httpFetch: unsupported protocol ${url.protocol}`);
  if (init.body !== undefined && init.body !== null && typeof init.body !== 'string') throw new TypeError('httpFetch sends string bodies only');
  const body = (init.body ?? undefined) as string | undefined;
  const signal = init.signal ?? undefined;
  if (signal?.aborted) throw abortError(signal);
  return new Promise<Response>((resolve, reject) => {
    const request = (url.protocol === 'https:' ? https : http).request(url, { method: init.method ?? 'GET', headers: requestHeaders(init.headers, body), agent }, (response) => {
      const status = response.statusCode ?? 0;
      const noBody = status === 204 || status === 304 || init.method === 'HEAD';
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          let open = true;
          const fail = (err: Error): void => {
            if (open) controller.error(err);
            open = false;
          };
          response.on('data', (chunk: Buffer) => open && controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
          response.on('end', () => {
            if (open) controller.close();
            open = false;
          });
          response.on('error', fail);
          // A connection that breaks off before the end of the body: the body errors, as undici's does.
          response.on('aborted', () => fail(new TypeError('terminated', { cause: new Error('other side closed') })));
        },
        cancel() {
          response.destroy();
        },
      });
      resolve(new Response(noBody ? null : stream, { status, statusText: response.statusMessage ?? '', headers: responseHeaders(response.headers) }));
    });
    const onAbort = (): void => {
      const err = abortError(signal!);
      request.destroy(err);
      reject(err);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    request.on('close', () => signal?.removeEventListener('abort', onAbort));
    request.on('error', (err) => reject(new TypeError('fetch failed', { cause: err })));
    request.end(body);
  });
}
