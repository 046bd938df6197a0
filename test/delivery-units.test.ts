import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { addressRefusal, guardedConnector, guardedLookup, type ResolvedAddress } from '../src/delivery/destination-guard.js';
import { BREAKER_THRESHOLD, JITTER_FRACTION, MIN_RETRY_DELAY_MS } from '../src/delivery/limits.js';
import { buildRequest, expandMacros, macroValues, signWebhook, type ConversionFields } from '../src/delivery/message.js';
import { classify, type SendResult } from '../src/delivery/outcome.js';
import { PublisherGate } from '../src/delivery/publisher-gate.js';
import { backoffDelayMs, nextDelayMs, parseRetryAfter } from '../src/delivery/schedule.js';
import { startReceiver } from './helpers/delivery-receiver.js';

/** The pure parts of delivery: schedule, message and signature, outcome, breaker, address policy. */

const conversion: ConversionFields = {
  conversionId: 'cv_1',
  clickId: 'ck/1+2',
  txid: 'T 1',
  event: 'sale',
  status: 'approved',
  payoutMinor: 1234n,
  currency: 'USD',
  offerId: 'off_1',
  subs: ['a&b', null, 'c=d', '日本', '%'],
};

describe('schedule', () => {
  it('walks the schedule, repeats the last entry, and only ever adds jitter', () => {
    const s = [10, 60, 300];
    expect(backoffDelayMs(1, s, () => 0)).toBe(10_000);
    expect(backoffDelayMs(2, s, () => 0)).toBe(60_000);
    expect(backoffDelayMs(3, s, () => 0)).toBe(300_000);
    expect(backoffDelayMs(9, s, () => 0)).toBe(300_000);
    expect(backoffDelayMs(1, s, () => 0.999999)).toBeLessThanOrEqual(10_000 * (1 + JITTER_FRACTION));
    expect(backoffDelayMs(1, [], () => 0)).toBe(10_000); // empty falls back to the default schedule
  });

  it('parses Retry-After as seconds or an HTTP-date, and ignores anything else', () => {
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now)).toBe(0);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 00:00:00 GMT', now)).toBe(0);
    for (const bad of ['-1', '1.5', '', 'soon', '1e3', undefined]) expect(parseRetryAfter(bad, now)).toBeUndefined();
  });

  it('prefers Retry-After over the schedule, never below the floor', () => {
    expect(nextDelayMs(1, [60], 5_000)).toBe(5_000);
    expect(nextDelayMs(1, [60], 0)).toBe(MIN_RETRY_DELAY_MS);
    expect(nextDelayMs(1, [60], undefined, () => 0)).toBe(60_000);
  });
});

describe('message', () => {
  it('URL-encodes every macro value and leaves unknown braces alone', () => {
    const url = expandMacros('https://p.example/x?c={clickid}&t={txid}&p={payout}&s1={sub1}&s2={sub2}&s4={sub4}&s5={sub5}&u={nope}', macroValues(conversion));
    expect(url).toBe('https://p.example/x?c=ck%2F1%2B2&t=T%201&p=12.34&s1=a%26b&s2=&s4=%E6%97%A5%E6%9C%AC&s5=%25&u={nope}');
    expect(macroValues({ ...conversion, payoutMinor: 5n, currency: 'JPY' }).payout).toBe('5');
    expect(macroValues({ ...conversion, payoutMinor: 1005n, currency: 'KWD' }).payout).toBe('1.005');
  });

  it('carries a txid of any text to the publisher exactly, through URL encoding', () => {
    for (const txid of ['ORD/2026/17', 'A,17', 'say "hi"', "it's", 'two  spaces ', 'Bestellung-Äöü', '注文番号-42', '😀', 'a&b=c?d#e%20f+g', 'x'.repeat(255)]) {
      const url = new URL(expandMacros('https://p.example/x?t={txid}&c={clickid}', macroValues({ ...conversion, txid })));
      expect(url.searchParams.get('t')).toBe(txid);
      expect(url.searchParams.get('c')).toBe(conversion.clickId);
    }
  });

  it('signs POST bodies and empty GET bodies so the official library verifies them', () => {
    const key = Buffer.alloc(32, 7);
    const secret = `whsec_${key.toString('base64')}`;
    for (const method of ['POST', 'GET'] as const) {
      const req = buildRequest({ postbackUrl: 'https://p.example/?c={clickid}', method, secret: key }, conversion, 'dlv_abc');
      expect(req.headers['webhook-id']).toBe('dlv_abc');
      expect(req.body === '').toBe(method === 'GET');
      expect(() => new Webhook(secret).verify(req.body, req.headers)).not.toThrow();
      expect(() => new Webhook(`whsec_${Buffer.alloc(32, 8).toString('base64')}`).verify(req.body, req.headers)).toThrow();
    }
    const post = buildRequest({ postbackUrl: 'https://p.example/', method: 'POST', secret: key }, conversion, 'dlv_abc');
    expect(JSON.parse(post.body)).toEqual({
      conversion_id: 'cv_1', clickid: 'ck/1+2', txid: 'T 1', event: 'sale', status: 'approved', payout: '12.34', currency: 'USD',
      offer_id: 'off_1', sub1: 'a&b', sub2: null, sub3: 'c=d', sub4: '日本', sub5: '%',
    });
    expect(signWebhook(key, 'id', 1, '')).toBe(signWebhook(key, 'id', 1, ''));
    expect(signWebhook(key, 'id', 1, '')).not.toBe(signWebhook(key, 'id', 2, ''));
  });
});

describe('outcome', () => {
  const response = (statusCode: number, headers: { retryAfter?: string; location?: string } = {}): SendResult => ({
    kind: 'response', statusCode, retryAfter: headers.retryAfter, location: headers.location, snippet: '', latencyMs: 1,
  });
  const error = (reason: 'timeout' | 'refused' | 'network' | 'aborted'): SendResult => ({ kind: 'error', reason, message: reason, latencyMs: 1 });

  it('2xx delivers, 410 disables, 3xx is a failure that is not followed, Retry-After only on 429/503', () => {
    expect(classify(response(200)).kind).toBe('delivered');
    expect(classify(response(204)).kind).toBe('delivered');
    expect(classify(response(410)).kind).toBe('gone');
    expect(classify(response(301, { location: '/x' }))).toMatchObject({ kind: 'retry', result: 'redirect', endpointFailure: false });
    expect(classify(response(429, { retryAfter: '7' }))).toMatchObject({ result: 'rate_limited', retryAfterMs: 7000, endpointFailure: true });
    expect(classify(response(503, { retryAfter: '7' }))).toMatchObject({ result: 'http_error', retryAfterMs: 7000, endpointFailure: true });
    expect(classify(response(500, { retryAfter: '7' }))).toMatchObject({ retryAfterMs: undefined, endpointFailure: true });
    expect(classify(response(404))).toMatchObject({ kind: 'retry', error: 'HTTP 404', endpointFailure: false });
  });

  it('timeouts and connection errors count against the endpoint; refusals and our own shutdown do not', () => {
    expect(classify(error('timeout'))).toMatchObject({ result: 'timeout', endpointFailure: true, immediate: false });
    expect(classify(error('network'))).toMatchObject({ result: 'network_error', endpointFailure: true });
    expect(classify(error('refused'))).toMatchObject({ result: 'refused', endpointFailure: false });
    expect(classify(error('aborted'))).toMatchObject({ result: 'aborted', endpointFailure: false, immediate: true });
  });
});

describe('publisher gate', () => {
  it('caps concurrency per publisher', () => {
    const gate = new PublisherGate({ perPublisher: 2 });
    gate.acquire('a');
    expect(gate.room('a')).toBe(1);
    gate.acquire('a');
    expect(gate.room('a')).toBe(0);
    expect(gate.room('b')).toBe(2);
    expect(gate.limits()).toEqual({ ids: ['a'], rooms: [0] });
    gate.release('a', 'success');
    expect(gate.room('a')).toBe(1);
  });

  it('opens after consecutive failures, lets one probe through, doubles on a failed probe, closes on success', () => {
    let now = 0;
    const gate = new PublisherGate({ perPublisher: 4, openMs: 1000, maxOpenMs: 3000, now: () => now });
    const fail = () => {
      gate.acquire('a');
      gate.release('a', 'failure');
    };
    for (let i = 0; i < BREAKER_THRESHOLD - 1; i++) fail();
    expect(gate.room('a')).toBe(4);
    gate.acquire('a');
    gate.release('a', 'success'); // a success resets the count
    for (let i = 0; i < BREAKER_THRESHOLD; i++) fail();
    expect(gate.room('a')).toBe(0);
    expect(gate.openCircuits()).toBe(1);
    expect(gate.nextProbeAt()).toBe(1000);

    now = 1000;
    expect(gate.room('a')).toBe(1); // half-open: one probe
    gate.acquire('a');
    expect(gate.room('a')).toBe(0);
    gate.release('a', 'failure');
    expect(gate.nextProbeAt()).toBe(3000); // reopened for twice as long

    now = 3000;
    gate.acquire('a');
    gate.release('a', 'failure');
    expect(gate.nextProbeAt()).toBe(6000); // capped at maxOpenMs

    now = 6000;
    gate.acquire('a');
    gate.release('a', 'neutral'); // a refusal tells nothing: still half-open, probe again
    expect(gate.room('a')).toBe(1);
    gate.acquire('a');
    gate.release('a', 'success');
    expect(gate.room('a')).toBe(4);
    expect(gate.openCircuits()).toBe(0);
  });
});

describe('destination guard', () => {
  it('refuses every non-public address, in any spelling, and accepts public unicast', () => {
    for (const a of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '10.0.0.1', '172.16.0.1', '192.168.1.1', '169.254.169.254', 'fe80::1',
      'fd00:ec2::254', '100.100.100.200', '0.0.0.0', '224.0.0.1', 'ff02::1', '64:ff9b::a9fe:a9fe', '2001:db8::1', '192.0.2.1', '127.1', '0x7f000001']) {
      expect(addressRefusal(a), a).toBeDefined();
    }
    for (const a of ['8.8.8.8', '2606:4700::1111', '::ffff:8.8.8.8']) expect(addressRefusal(a), a).toBeUndefined();
  });

  it('lookup refuses the whole answer if any address is private, and answers in the shape net asks for', async () => {
    const resolve = async (host: string): Promise<ResolvedAddress[]> =>
      host === 'mixed.test'
        ? [{ address: '8.8.8.8', family: 4 }, { address: '10.0.0.1', family: 4 }]
        : [{ address: '8.8.8.8', family: 4 }, { address: '2606:4700::1111', family: 6 }];
    const lookup = (host: string, options: object, allowPrivate = false) =>
      new Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family?: number }>((done) =>
        guardedLookup(resolve, allowPrivate)(host, options as never, ((err: NodeJS.ErrnoException | null, address: unknown, family?: number) =>
          done({ err, address, family })) as never),
      );
    expect((await lookup('mixed.test', {})).err?.message).toBe('mixed.test resolved to a forbidden address: 10.0.0.1 is a private address');
    expect((await lookup('mixed.test', {}, true)).err).toBeNull();
    expect(await lookup('ok.test', {})).toEqual({ err: null, address: '8.8.8.8', family: 4 });
    expect((await lookup('ok.test', { all: true })).address).toHaveLength(2);
    expect((await lookup('ok.test', { family: 6 })).address).toBe('2606:4700::1111');
  });

  it('the connector refuses a literal private host before any packet is sent', async () => {
    const rx = await startReceiver();
    try {
      const port = new URL(rx.url).port;
      const connect = (allowPrivate: boolean) =>
        new Promise<{ err: Error | null; ok: boolean }>((done) =>
          guardedConnector({ allowPrivate, resolve: async () => [], connectTimeoutMs: 1000 })(
            { hostname: '127.0.0.1', protocol: 'http:', port },
            (err, socket) => {
              socket?.destroy();
              done({ err, ok: socket !== null });
            },
          ),
        );
      const refused = await connect(false);
      expect(refused.err?.message).toBe('host 127.0.0.1 is a loopback address');
      await new Promise((r) => setTimeout(r, 50));
      expect(rx.connections()).toBe(0);
      expect((await connect(true)).ok).toBe(true);
    } finally {
      await rx.close();
    }
  });
});
