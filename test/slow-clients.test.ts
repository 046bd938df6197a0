import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';

/** Slow and abusive clients are cut off at the configured timeouts and do not starve honest senders. */

const HEADERS_TIMEOUT_MS = 600;
const REQUEST_TIMEOUT_MS = 1200;
/** Node checks the timeouts on an interval (a quarter of the headers timeout here) plus scheduling. */
const MARGIN_MS = 1500;

let t: TestEngine;
let base: string;
let port: number;

beforeAll(async () => {
  t = await startTestEngine({ httpHeadersTimeoutMs: HEADERS_TIMEOUT_MS, httpRequestTimeoutMs: REQUEST_TIMEOUT_MS, httpIdleTimeoutMs: 10_000 });
  base = await t.app.listen({ port: 0, host: '127.0.0.1' });
  port = Number(new URL(base).port);
});
afterAll(async () => {
  await t?.close();
});

type Slow = { closed: Promise<{ ms: number; byServer: boolean; received: string }>; stop: () => void };

/** A client that sends `head` and then one byte of `trickle` every 100 ms, forever; never closes on its own. */
function slowClient(head: string, trickle: string): Slow {
  const socket = net.connect(port, '127.0.0.1');
  const started = performance.now();
  let received = '';
  let stoppedByTest = false;
  let timer: NodeJS.Timeout | undefined;
  socket.on('data', (d) => (received += d.toString()));
  socket.on('error', () => undefined);
  socket.on('connect', () => {
    socket.write(head);
    let i = 0;
    timer = setInterval(() => {
      if (!socket.destroyed) socket.write(trickle[i++ % trickle.length] as string);
    }, 100);
  });
  const closed = new Promise<{ ms: number; byServer: boolean; received: string }>((resolve) =>
    socket.on('close', () => {
      clearInterval(timer);
      resolve({ ms: performance.now() - started, byServer: !stoppedByTest, received });
    }),
  );
  return {
    closed,
    stop: () => {
      stoppedByTest = true;
      socket.destroy();
    },
  };
}

describe('connection limit', { timeout: 30_000 }, () => {
  it('a connection beyond HTTP_MAX_CONNECTIONS is closed by the server at once; one below it is served', async () => {
    const limited = await startTestEngine({ httpMaxConnections: 5 });
    try {
      const url = await limited.app.listen({ port: 0, host: '127.0.0.1' });
      const limitedPort = Number(new URL(url).port);
      const open = await Promise.all(
        Array.from({ length: 5 }, () => new Promise<net.Socket>((resolve) => {
          const s = net.connect(limitedPort, '127.0.0.1', () => resolve(s));
          s.on('error', () => undefined);
        })),
      );
      await new Promise((r) => setTimeout(r, 100));
      const extra = net.connect(limitedPort, '127.0.0.1');
      extra.on('error', () => undefined);
      let received = '';
      extra.on('data', (d) => (received += d.toString()));
      extra.on('connect', () => extra.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      await new Promise((resolve) => extra.on('close', resolve));
      expect(received).toBe('');
      for (const s of open) s.destroy();
      await new Promise((r) => setTimeout(r, 100));
      const res = await fetch(`${url}/healthz`);
      expect(res.status).toBe(200);
    } finally {
      await limited.close();
    }
  });
});

describe('slow clients', { timeout: 30_000 }, () => {
  it('a client trickling its headers a byte at a time is cut off by the server at the headers timeout', async () => {
    const slow = slowClient('GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n');
    const closed = await slow.closed;
    expect(closed.byServer).toBe(true);
    expect(closed.ms).toBeGreaterThanOrEqual(HEADERS_TIMEOUT_MS - 50);
    expect(closed.ms).toBeLessThan(HEADERS_TIMEOUT_MS + MARGIN_MS);
    expect(closed.received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('a client trickling its body is cut off by the server at the request timeout', async () => {
    const slow = slowClient('POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n', ' ');
    const closed = await slow.closed;
    expect(closed.byServer).toBe(true);
    expect(closed.ms).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
    expect(closed.ms).toBeLessThan(REQUEST_TIMEOUT_MS + MARGIN_MS);
    expect(closed.received).not.toMatch(/^HTTP\/1\.1 200 /);
  });

  it('with 300 slow clients connected, an honest /healthz and a signed postback are answered; the server closes every slow one', async () => {
    const { advertiser, offer, publisher } = await seedCatalog(t.app);
    const clickId = await mintClick(t.app, offer.id, publisher.id);
    const slow = Array.from({ length: 300 }, () => slowClient('GET /healthz HTTP/1.1\r\nHost: x\r\n', 'X-Slow: 1\r\n'));
    try {
      await new Promise((r) => setTimeout(r, 200)); // all connected and trickling
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      const txid = uniqueTx();
      const res = await fetch(`${base}${signedGetUrl(advertiser.id, `clickid=${clickId}&txid=${txid}`, advertiser.secrets[0].secret)}`);
      expect(res.status).toBe(200);
      expect((await res.json()).duplicate).toBe(false);
      const [row] = await t.sql<{ n: number }[]>`select count(*)::int as n from conversions where txid = ${txid}`;
      expect(row?.n).toBe(1);

      const closed = await Promise.all(slow.map((s) => s.closed));
      expect(closed.every((c) => c.byServer)).toBe(true);
      expect(Math.max(...closed.map((c) => c.ms))).toBeLessThan(HEADERS_TIMEOUT_MS + MARGIN_MS + 1000);
    } finally {
      for (const s of slow) s.stop();
    }
  });
});
