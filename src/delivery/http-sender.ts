import { Agent, request } from 'undici';
import type { Dispatcher } from 'undici';
import { guardedConnector, type Resolver } from './destination-guard.js';
import { DRAIN_LIMIT_BYTES, SNIPPET_BYTES } from './limits.js';
import type { OutboundRequest } from './message.js';
import type { SendResult } from './outcome.js';

/**
 * Sends one outbound postback with undici. One Agent per publisher keeps that publisher's keep-alive
 * connections to itself (a slow publisher's sockets never queue another's requests) and connects
 * only through the SSRF guard. `request` never follows redirects; one timer bounds the whole try.
 */

export type SenderOptions = {
  allowPrivate: boolean;
  resolve: Resolver;
  timeoutMs: number;
  connectionsPerPublisher: number;
};

const TIMED_OUT = Symbol('timeout');
const STOPPING = Symbol('stopping');

export class HttpSender {
  private readonly agents = new Map<string, Agent>();

  constructor(private readonly opts: SenderOptions) {}

  private agentFor(publisherId: string): Agent {
    let agent = this.agents.get(publisherId);
    if (!agent) {
      agent = new Agent({
        connections: this.opts.connectionsPerPublisher,
        pipelining: 1,
        headersTimeout: this.opts.timeoutMs,
        bodyTimeout: this.opts.timeoutMs,
        connect: guardedConnector({
          allowPrivate: this.opts.allowPrivate,
          resolve: this.opts.resolve,
          connectTimeoutMs: this.opts.timeoutMs,
        }),
      });
      this.agents.set(publisherId, agent);
    }
    return agent;
  }

  /** Never throws: every way a try can end is a SendResult. `stop` aborts it for a shutdown. */
  async send(publisherId: string, req: OutboundRequest, stop?: AbortSignal): Promise<SendResult> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(TIMED_OUT), this.opts.timeoutMs);
    const onStop = () => controller.abort(STOPPING);
    if (stop?.aborted) onStop();
    stop?.addEventListener('abort', onStop, { once: true });
    try {
      const res = await request(req.url, {
        dispatcher: this.agentFor(publisherId),
        method: req.method,
        headers: req.headers,
        body: req.method === 'POST' ? req.body : undefined,
        signal: controller.signal,
      });
      const latencyMs = elapsed();
      const snippet = await readSnippet(res.body);
      return {
        kind: 'response',
        statusCode: res.statusCode,
        retryAfter: firstHeader(res.headers['retry-after']),
        location: firstHeader(res.headers.location),
        snippet,
        latencyMs,
      };
    } catch (err) {
      const latencyMs = elapsed();
      if (controller.signal.aborted) {
        const stopping = controller.signal.reason === STOPPING;
        return stopping
          ? { kind: 'error', reason: 'aborted', message: 'aborted: engine stopping', latencyMs }
          : { kind: 'error', reason: 'timeout', message: `no answer within ${this.opts.timeoutMs} ms`, latencyMs };
      }
      return describeError(err, latencyMs);
    } finally {
      clearTimeout(timer);
      stop?.removeEventListener('abort', onStop);
    }
  }

  async close(): Promise<void> {
    const agents = [...this.agents.values()];
    this.agents.clear();
    await Promise.all(agents.map((a) => a.destroy().catch(() => undefined)));
  }
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Keeps the first bytes for the attempt log and drains a modest rest so the socket can be reused. */
async function readSnippet(body: Dispatcher.ResponseData['body']): Promise<string> {
  const kept: Buffer[] = [];
  let keptBytes = 0;
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (keptBytes < SNIPPET_BYTES) {
        const piece = chunk.subarray(0, SNIPPET_BYTES - keptBytes);
        kept.push(piece);
        keptBytes += piece.length;
      }
      total += chunk.length;
      if (total > DRAIN_LIMIT_BYTES) {
        body.destroy();
        break;
      }
    }
  } catch {
    // The status line already decided the outcome; a body cut short only shortens the snippet.
  }
  // PostgreSQL text cannot hold NUL; a binary body is kept as readable replacement characters.
  return Buffer.concat(kept).toString('utf8').replace(/\u0000/g, '\uFFFD');
}

function describeError(err: unknown, latencyMs: number): SendResult {
  const e = err as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = e.code ?? e.cause?.code;
  const message = (e.message ?? String(err)).slice(0, 300);
  if (code === 'ERR_DESTINATION_REFUSED') return { kind: 'error', reason: 'refused', message: `destination refused: ${message}`, latencyMs };
  if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return { kind: 'error', reason: 'timeout', message: `${code}: ${message}`, latencyMs };
  }
  return { kind: 'error', reason: 'network', message: code ? `${code}: ${message}` : message, latencyMs };
}
