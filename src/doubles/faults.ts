import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { deriveSeed } from '../policy/seed.js';

/**
 * A fault-injecting HTTP front (a test double, design §9): a proxy on 127.0.0.1 placed before an
 * OpenAI-compatible server (the SIMULATED policy server in tests) that spoils requests on a
 * seeded schedule, the way real endpoints misbehave: rate limits, server errors, requests that
 * never answer, connections dropped mid-answer, answers dribbled slowly, bodies that are not a
 * completion, and an endpoint that is down. It counts every fault it injected.
 *
 * Only `POST …/chat/completions` requests are spoiled (and numbered); everything else passes,
 * except while the endpoint is down, which fails every request.
 */

export const FAULT_KINDS = [
  /** 429 with `Retry-After: <seconds>`. */
  'rate_limit',
  /** 429 with `Retry-After: <HTTP-date>`. */
  'rate_limit_date',
  'http_500',
  'http_503',
  /** The request is held and never answered: the client's timeout must end it. */
  'hang',
  /** The upstream answer's headers and half its body, then the socket is destroyed. */
  'drop',
  /** The upstream answer, dribbled in small pieces (within the client's timeout): not a failure. */
  'slow',
  /** 200, `content-type: application/json`, a body that is not JSON. */
  'garbage_text',
  /** 200 with JSON that is not a chat completion (no choices, or content that is not text). */
  'wrong_shape',
  /** The upstream completion with an empty `choices` array. */
  'empty_choices',
  /** The socket is destroyed before any answer: what a crashed or unreachable server looks like. */
  'down',
  /** 401 whose error message quotes the request's Authorization header (echoing servers exist). */
  'auth_echo',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** The faults a client gets past by retrying (or, for `slow`, by waiting). */
export const TRANSIENT_FAULTS: readonly FaultKind[] = FAULT_KINDS.filter((kind) => kind !== 'auth_echo');

export interface FaultSchedule {
  /** Fraction (0..1) of completion requests that get a fault, decided per request by a PRNG seeded with `seed`. */
  rate?: number;
  /** The kinds `rate` draws from, in rotation (each round in a seeded order), so every kind comes up. Default: TRANSIENT_FAULTS. */
  kinds?: readonly FaultKind[];
  seed?: number;
  /** Exact faults of the first completion requests (entry i for request i; null passes); `rate` applies after the script. */
  script?: readonly (FaultKind | null)[];
  /** From this completion request on (0-based), the endpoint is down: every request fails with `downKind`. */
  downAfter?: number | null;
  /** How a down endpoint fails (default `down`). */
  downKind?: FaultKind;
  /** Seconds in `Retry-After` of `rate_limit` (default 1). */
  retryAfterS?: number;
  /** How far ahead (seconds) the HTTP-date of `rate_limit_date` points (default 2). */
  retryAfterDateS?: number;
  /** `slow`: the body goes out in this many pieces (default 8) … */
  slowPieces?: number;
  /** … this far apart (default 40 ms). */
  slowDelayMs?: number;
  /** Error bodies quote the request's Authorization header (a server that echoes what it was sent). */
  echoAuth?: boolean;
}

export interface FaultEvent {
  /** Number of the completion request since the schedule was set (null: not a completion request). */
  index: number | null;
  method: string;
  path: string;
  fault: FaultKind | null;
}

export interface FaultFront {
  /** Base URL of the front: the target's path (e.g. /v1) on the front's port. */
  url: string;
  port: number;
  /** Faults injected so far, by kind (kept across configure()). */
  readonly injected: Record<FaultKind, number>;
  /** Every request the front received, in order. */
  readonly events: FaultEvent[];
  /** Replaces the schedule; completion requests are numbered from 0 again. */
  configure(schedule: FaultSchedule): void;
  /** Faults injected so far, in total. */
  totalInjected(): number;
  close(): Promise<void>;
}

export interface FaultFrontOptions {
  /** Base URL of the server behind the front, e.g. http://127.0.0.1:1234/v1. */
  target: string;
  schedule?: FaultSchedule;
  host?: string;
  port?: number;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'proxy-connection', 'te', 'trailer']);

interface Upstream {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export async function startFaultFront(options: FaultFrontOptions): Promise<FaultFront> {
  const target = new URL(options.target);
  if (target.protocol !== 'http:') throw new Error(`the fault front forwards to http:// only, got ${options.target}`);
  let schedule: FaultSchedule = options.schedule ?? {};
  let counter = 0;
  let faultsInRotation = 0;
  const injected = Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>;
  const events: FaultEvent[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  /** The fault of completion request `index` (null: it passes). */
  const decide = (index: number): FaultKind | null => {
    if (schedule.downAfter !== undefined && schedule.downAfter !== null && index >= schedule.downAfter) return schedule.downKind ?? 'down';
    const script = schedule.script ?? [];
    if (index < script.length) return script[index] ?? null;
    const rate = schedule.rate ?? 0;
    if (rate <= 0) return null;
    const seed = schedule.seed ?? 0;
    if (deriveSeed('fault', seed, index) / 0x80000000 >= rate) return null;
    const kinds = schedule.kinds ?? TRANSIENT_FAULTS;
    if (kinds.length === 0) return null;
    const round = Math.floor(faultsInRotation / kinds.length);
    const order = [...kinds].sort((a, b) => deriveSeed('order', seed, round, a) - deriveSeed('order', seed, round, b) || a.localeCompare(b));
    return order[faultsInRotation++ % kinds.length]!;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { message: 'the fault front could not reach its target', type: 'server_error' } }));
      } else res.destroy();
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  const later = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readAll(req);
    const url = new URL(req.url ?? '/', 'http://front');
    const isCompletion = req.method === 'POST' && /\/chat\/completions\/?$/.test(url.pathname);
    let index: number | null = null;
    let fault: FaultKind | null = null;
    if (isCompletion) {
      index = counter++;
      fault = decide(index);
    } else if (schedule.downAfter !== undefined && schedule.downAfter !== null && counter >= schedule.downAfter) {
      // A down endpoint fails every request, not only completions.
      fault = schedule.downKind ?? 'down';
    }
    events.push({ index, method: req.method ?? '', path: url.pathname, fault });
    if (fault !== null) injected[fault] += 1;
    const auth = req.headers.authorization ?? '';
    const echo = schedule.echoAuth ? ` (request authorization: ${auth})` : '';

    switch (fault) {
      case null:
        return pass(res, await forward(req, body));
      case 'rate_limit':
        return sendJson(res, 429, errorBody(`Rate limit reached; retry later${echo}`, 'rate_limit_error'), { 'retry-after': String(schedule.retryAfterS ?? 1) });
      case 'rate_limit_date': {
        const when = new Date(Date.now() + (schedule.retryAfterDateS ?? 2) * 1000).toUTCString();
        return sendJson(res, 429, errorBody(`Rate limit reached; retry after ${when}${echo}`, 'rate_limit_error'), { 'retry-after': when });
      }
      case 'http_500':
        return sendJson(res, 500, errorBody(`The server had an error while processing your request${echo}`, 'server_error'));
      case 'http_503':
        return sendJson(res, 503, errorBody(`The engine is currently overloaded${echo}`, 'server_error'));
      case 'hang':
        // Never answered; the socket closes when the client gives up (or the front closes).
        return;
      case 'down':
        req.socket.destroy();
        return;
      case 'auth_echo': {
        const given = auth.replace(/^Bearer\s+/i, '');
        return sendJson(res, 401, errorBody(`Incorrect API key provided: ${given}. Authorization header was: ${auth}`, 'invalid_request_error', 'invalid_api_key'));
      }
      case 'garbage_text': {
        const text = `<html><body><h1>502 Bad Gateway</h1>upstream sent an invalid response${echo}</body></html>`;
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
        return;
      }
      case 'wrong_shape': {
        const upstream = await forward(req, body);
        const parsed = parseJson(upstream.body);
        // Two shapes in turn: no choices at all, or a message whose content is not text.
        const shaped =
          injected.wrong_shape % 2 === 1
            ? { object: 'chat.completion', result: parsed }
            : { ...(parsed as object), choices: [{ index: 0, message: { role: 'assistant', content: { type: 'text', text: contentOf(parsed) } }, finish_reason: 'stop' }] };
        return sendJson(res, 200, shaped);
      }
      case 'empty_choices': {
        const upstream = await forward(req, body);
        return sendJson(res, 200, { ...(parseJson(upstream.body) as object), choices: [] });
      }
      case 'drop': {
        const upstream = await forward(req, body);
        res.writeHead(upstream.status, { ...headersOf(upstream), 'content-length': upstream.body.length });
        res.write(upstream.body.subarray(0, Math.floor(upstream.body.length / 2)));
        await later(20);
        res.destroy();
        return;
      }
      case 'slow': {
        const upstream = await forward(req, body);
        res.writeHead(upstream.status, { ...headersOf(upstream), 'content-length': upstream.body.length });
        const pieces = Math.max(1, schedule.slowPieces ?? 8);
        const size = Math.ceil(upstream.body.length / pieces);
        for (let at = 0; at < upstream.body.length; at += size) {
          await later(schedule.slowDelayMs ?? 40);
          if (res.destroyed) return;
          res.write(upstream.body.subarray(at, at + size));
        }
        res.end();
        return;
      }
    }
  }

  function forward(req: IncomingMessage, body: Buffer): Promise<Upstream> {
    return new Promise((resolve, reject) => {
      const headers = { ...req.headers, host: target.host, 'content-length': String(body.length) };
      delete headers.connection;
      const upstream = httpRequest({ host: target.hostname, port: target.port || 80, method: req.method, path: req.url, headers }, (response) => {
        readAll(response).then((data) => resolve({ status: response.statusCode ?? 502, headers: response.headers, body: data }), reject);
      });
      upstream.on('error', reject);
      upstream.end(body);
    });
  }

  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  let closed: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}${target.pathname.replace(/\/+$/, '')}`,
    port,
    injected,
    events,
    configure(next: FaultSchedule) {
      schedule = next;
      counter = 0;
      faultsInRotation = 0;
    },
    totalInjected: () => Object.values(injected).reduce((a, b) => a + b, 0),
    close() {
      closed ??= new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

function headersOf(upstream: Upstream): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(upstream.headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && name !== 'content-length') out[name] = value;
  }
  return out;
}

function pass(res: ServerResponse, upstream: Upstream): void {
  res.writeHead(upstream.status, { ...headersOf(upstream), 'content-length': upstream.body.length });
  res.end(upstream.body);
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function errorBody(message: string, type: string, code: string | null = null): unknown {
  return { error: { message, type, param: null, code } };
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    return {};
  }
}

function contentOf(completion: unknown): string {
  const choice = (completion as { choices?: { message?: { content?: unknown } }[] } | null)?.choices?.[0];
  return typeof choice?.message?.content === 'string' ? choice.message.content : '';
}
