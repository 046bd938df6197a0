import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedAddress, Resolver } from '../src/delivery/destination-guard.js';
import { DeliveryWorker } from '../src/delivery/worker.js';
import { FAST_DELIVERY, insertConversionsWithDeliveries, startReceiver, waitForState, type Receiver } from './helpers/delivery-receiver.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * SSRF: with ALLOW_PRIVATE_DESTINATIONS=false, no outbound postback reaches loopback, private,
 * link-local or metadata addresses, however the address is spelled and whether it is written in the
 * URL or only comes back from DNS. A local receiver proves that not even a TCP connection is made.
 */

let t: TestEngine;
let rx: Receiver;
let ids: { advertiserId: string; offerId: string; publisherId: string };
let port: string;

/** DNS from a table; a name not in it does not resolve. `onLookup` sees every name asked for. */
function tableResolver(answers: Record<string, ResolvedAddress[]>, onLookup: (host: string) => void = () => undefined): Resolver {
  return async (host) => {
    onLookup(host);
    const answer = answers[host];
    if (!answer) throw Object.assign(new Error(`no such host ${host}`), { code: 'ENOTFOUND' });
    return answer;
  };
}

beforeAll(async () => {
  rx = await startReceiver(() => ({ status: 200 }));
  port = new URL(rx.url).port;
  t = await startTestEngine({ ...FAST_DELIVERY, allowPrivateDestinations: false });
  const seeded = await seedCatalog(t.app);
  ids = { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id, publisherId: seeded.publisher.id };
});
afterAll(async () => {
  await t.close();
  await rx.close();
});

/** A publisher whose stored URL is `url`: written with SQL, as if it had been allowed when stored. */
async function publisherAt(url: string): Promise<string> {
  const res = await t.app.inject({ method: 'POST', url: '/v1/publishers', headers: auth(), payload: { name: 'p', postbackUrl: 'https://pub.example/pb' } });
  const id = res.json().id as string;
  await t.sql`update publishers set postback_url = ${url} where id = ${id}`;
  await t.engine.catalog.load();
  return id;
}

describe('SSRF protection', () => {
  it('the admin API refuses private hosts in any spelling', async () => {
    for (const host of ['127.0.0.1', '2130706433', '0x7f.1', '127.1', '[::1]', '[::ffff:127.0.0.1]', '10.0.0.1', '169.254.169.254', 'localhost', 'metadata.google.internal']) {
      const res = await t.app.inject({
        method: 'POST',
        url: '/v1/publishers',
        headers: auth(),
        payload: { name: 'p', postbackUrl: `http://${host}:${port}/pb` },
      });
      expect(res.statusCode, host).toBe(400);
      expect(res.json().error.details[0].path).toBe('postbackUrl');
    }
  });

  it('the admin API refuses a host name that resolves to a private address, on create and on update', async () => {
    const answers: Record<string, ResolvedAddress[]> = {
      'internal.test': [{ address: '10.1.2.3', family: 4 }],
      'mixed.test': [
        { address: '8.8.8.8', family: 4 },
        { address: '::1', family: 6 },
      ],
      'public.test': [{ address: '8.8.8.8', family: 4 }],
    };
    const dns = await startTestEngine({ allowPrivateDestinations: false }, { resolve: tableResolver(answers) });
    try {
      const create = (host: string) =>
        dns.app.inject({ method: 'POST', url: '/v1/publishers', headers: auth(), payload: { name: host, postbackUrl: `https://${host}/pb?c={sub1}` } });
      for (const host of ['internal.test', 'mixed.test']) {
        const res = await create(host);
        expect(res.statusCode, host).toBe(400);
        expect(res.json().error.details).toEqual([{ path: 'postbackUrl', message: expect.stringMatching(new RegExp(`^host "${host.replace('.', '\\.')}" resolves to a forbidden address: `)) }]);
      }
      expect((await dns.sql`select count(*)::int as n from publishers where name in ('internal.test', 'mixed.test')`)[0]?.n).toBe(0);

      // A public name is accepted, and so is one that does not resolve yet (delivery checks again at connect time).
      const ok = await create('public.test');
      expect(ok.statusCode).toBe(201);
      expect((await create('not-yet.test')).statusCode).toBe(201);

      const id = ok.json().id as string;
      const patch = await dns.app.inject({ method: 'PATCH', url: `/v1/publishers/${id}`, headers: auth(), payload: { postbackUrl: 'https://internal.test/pb' } });
      expect(patch.statusCode).toBe(400);
      expect(patch.json().error.details[0].path).toBe('postbackUrl');
      expect((await dns.sql`select postback_url from publishers where id = ${id}`)[0]?.postback_url).toBe('https://public.test/pb?c={sub1}');
    } finally {
      await dns.close();
    }
  });

  it('refuses stored URLs that point at loopback, private, link-local or metadata addresses, with no connection made', async () => {
    const urls = [
      `http://127.0.0.1:${port}/pb`,
      `http://2130706433:${port}/pb`,
      `http://0x7f.1:${port}/pb`,
      `http://0177.0.0.1:${port}/pb`,
      `http://[::ffff:127.0.0.1]:${port}/pb`,
      `http://[::1]:${port}/pb`,
      `http://localhost:${port}/pb`,
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/latest/meta-data/',
      'http://100.100.100.200/latest/meta-data/',
      'http://10.1.2.3/pb',
      'http://192.168.0.1/pb',
      'http://0.0.0.0/pb',
    ];
    const deliveries: string[] = [];
    for (const url of urls) {
      const publisherId = await publisherAt(url);
      const [id] = (await insertConversionsWithDeliveries(t.sql, { ...ids, publisherId }, 1, { refireWindowS: 60 })).deliveryIds as [string];
      deliveries.push(id);
    }
    for (const id of deliveries) await waitForState(t.sql, id, 'failed');
    const attempts = await t.sql`select delivery_id, status_code, error from delivery_attempts where delivery_id = any(${deliveries}::text[])`;
    for (const id of deliveries) {
      const first = attempts.find((a) => a.delivery_id === id);
      expect(first?.status_code, id).toBeNull();
      expect(first?.error, id).toMatch(/^destination refused: /);
    }
    expect(rx.connections()).toBe(0);
    expect(rx.received).toHaveLength(0);
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^postback_engine_delivery_attempts_total\{result="refused"\} \d+$/m);
  });

  it('checks the address DNS returns at connect time: a name resolving to loopback (or partly so) is refused, no connection', async () => {
    // The engine's own worker is stopped so a worker with substituted DNS is the only one sending.
    await t.engine.deliveries.stop();
    const answers: Record<string, ResolvedAddress[]> = {
      'loopback.test': [{ address: '127.0.0.1', family: 4 }],
      'mixed.test': [
        { address: '8.8.8.8', family: 4 },
        { address: '127.0.0.1', family: 4 },
      ],
      'six.test': [{ address: '::1', family: 6 }],
      'mapped.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
      'metadata.test': [{ address: '169.254.169.254', family: 4 }],
    };
    const lookups: string[] = [];
    const worker = new DeliveryWorker(
      { sql: t.engine.sql, txSql: t.engine.txSql, catalog: t.engine.catalog, log: t.engine.log, registry: new Registry(), config: t.engine.config },
      {
        pollMs: 50,
        resolve: tableResolver(answers, (host) => lookups.push(host)),
      },
    );
    await worker.start();
    try {
      const deliveries: [string, string][] = [];
      for (const host of Object.keys(answers)) {
        const res = await t.app.inject({
          method: 'POST',
          url: '/v1/publishers',
          headers: auth(),
          payload: { name: host, postbackUrl: `http://${host}:${port}/pb` },
        });
        expect(res.statusCode).toBe(201);
        const [id] = (await insertConversionsWithDeliveries(t.sql, { ...ids, publisherId: res.json().id }, 1, { refireWindowS: 60 })).deliveryIds as [string];
        deliveries.push([host, id]);
      }
      for (const [, id] of deliveries) await waitForState(t.sql, id, 'failed');
      for (const [host, id] of deliveries) {
        const [a] = await t.sql`select error from delivery_attempts where delivery_id = ${id} order by id limit 1`;
        expect(a?.error, host).toMatch(new RegExp(`^destination refused: ${host.replace('.', '\\.')} resolved to a forbidden address: `));
      }
      expect(new Set(lookups)).toEqual(new Set(Object.keys(answers)));
      expect(rx.connections()).toBe(0);
    } finally {
      await worker.stop();
    }
  });
});
