import { afterEach, describe, expect, it, vi } from 'vitest';
import { insertConversionsWithDeliveries, setupDelivery, waitForState, type DeliverySetup, type Handler } from './helpers/delivery-receiver.js';
import { auth } from './helpers/engine.js';
import type { Config } from '../src/config.js';

/** 410 disabling and re-enabling an endpoint, the deliveries API (list, auth, paging, replay), and the metrics. */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function setup(handler: Handler, config: Partial<Config> = {}): Promise<DeliverySetup> {
  const s = await setupDelivery(handler, { config });
  cleanups.push(s.close);
  return s;
}

async function token(s: DeliverySetup, role: string): Promise<string> {
  const res = await s.t.app.inject({ method: 'POST', url: '/v1/tokens', headers: auth(), payload: { role, name: role } });
  return res.json().token;
}

describe('410 Gone', () => {
  it('disables the endpoint visibly (admin view, metric), holds its deliveries, and re-enabling resumes them', async () => {
    let gone = true;
    const s = await setup(() => (gone ? { status: 410, body: 'gone' } : { status: 200 }));
    const { t, rx, ids } = s;
    const logged = vi.spyOn(t.engine.log, 'error');
    const [first] = (await insertConversionsWithDeliveries(t.sql, ids, 1, { refireWindowS: 60 })).deliveryIds as [string];
    await waitForState(t.sql, first, 'failed');
    expect(logged).toHaveBeenCalledWith({ publisherId: ids.publisherId, deliveryId: first }, expect.stringContaining('410 Gone'));

    const [stored] = await t.sql`select disabled_at, disabled_reason from publishers where id = ${ids.publisherId}`;
    expect(stored?.disabled_at).toBeInstanceOf(Date);
    expect(stored?.disabled_reason).toContain('410');
    // The admin view reads the catalog, which every node reloads within a second of the change.
    await expect.poll(async () => (await t.app.inject({ method: 'GET', url: `/v1/publishers/${ids.publisherId}`, headers: auth() })).json(), {
      timeout: 3000,
    }).toMatchObject({ disabled: true, disabledReason: expect.stringContaining('410') });
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/^postback_engine_delivery_endpoint_disabled_total 1$/m);
    expect(metrics).toMatch(/^postback_engine_delivery_publishers_disabled 1$/m);

    // Later conversions for the disabled publisher are queued but not sent.
    const more = (await insertConversionsWithDeliveries(t.sql, ids, 3, { refireWindowS: 60 })).deliveryIds;
    await new Promise((r) => setTimeout(r, 400));
    expect(rx.received).toHaveLength(1);
    const held = await t.sql`select state, attempts from deliveries where id = any(${more}::text[])`;
    expect(held.every((d) => d.state === 'pending' && d.attempts === 0)).toBe(true);
    const list = await t.app.inject({ method: 'GET', url: `/v1/deliveries?publisherId=${ids.publisherId}&state=pending`, headers: auth() });
    expect(list.json().items.map((d: { publisherDisabled: boolean; nextAttemptAt: unknown }) => [d.publisherDisabled, d.nextAttemptAt])).toEqual([
      [true, null],
      [true, null],
      [true, null],
    ]);

    // A replay is refused while disabled; enabling resumes everything inside the window.
    const replay = await t.app.inject({ method: 'POST', url: `/v1/deliveries/${first}/replay`, headers: auth() });
    expect(replay.statusCode).toBe(409);
    expect(replay.json().error.code).toBe('conflict');
    gone = false;
    const enabled = await t.app.inject({ method: 'POST', url: `/v1/publishers/${ids.publisherId}/enable`, headers: auth() });
    expect(enabled.statusCode).toBe(200);
    expect(enabled.json()).toMatchObject({ id: ids.publisherId, disabled: false, disabledReason: null, resumedDeliveries: 4 });
    for (const id of [first, ...more]) await waitForState(t.sql, id, 'delivered');
    expect(new Set(rx.received.slice(1).map((r) => r.webhookId))).toEqual(new Set([first, ...more]));
    const [row] = await t.sql`select disabled_at from publishers where id = ${ids.publisherId}`;
    expect(row?.disabled_at).toBeNull();
  });

  it('enable needs admin and a known publisher', async () => {
    const s = await setup(() => ({ status: 200 }));
    const finance = await token(s, 'finance');
    const url = `/v1/publishers/${s.ids.publisherId}/enable`;
    expect((await s.t.app.inject({ method: 'POST', url })).statusCode).toBe(401);
    expect((await s.t.app.inject({ method: 'POST', url, headers: auth(finance) })).statusCode).toBe(403);
    const missing = await s.t.app.inject({ method: 'POST', url: '/v1/publishers/pub_nope/enable', headers: auth() });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
    const ok = await s.t.app.inject({ method: 'POST', url, headers: auth() });
    expect(ok.json()).toMatchObject({ disabled: false, resumedDeliveries: 0 });
  });
});

describe('GET /v1/deliveries', () => {
  it('lists deliveries newest first with every attempt, filters by state and publisher, and pages with a cursor', async () => {
    const s = await setup((_r, nth) => (nth === 1 ? { status: 500, body: 'x'.repeat(2000) } : { status: 200, body: 'ok' }));
    const { t, ids } = s;
    const { deliveryIds } = await insertConversionsWithDeliveries(t.sql, ids, 5, { refireWindowS: 60 });
    for (const id of deliveryIds) await waitForState(t.sql, id, 'delivered');

    const all = await t.app.inject({ method: 'GET', url: '/v1/deliveries?state=delivered', headers: auth() });
    expect(all.statusCode).toBe(200);
    const items = all.json().items as { id: string; attempts: { statusCode: number; response: string; latencyMs: number; at: string }[] }[];
    expect(items.map((d) => d.id).sort()).toEqual([...deliveryIds].sort());
    const retried = items.find((d) => d.attempts.length === 2);
    expect(retried?.attempts[0]).toMatchObject({ statusCode: 500, error: 'HTTP 500', latencyMs: expect.any(Number), replay: false });
    expect(retried?.attempts[0]?.response).toHaveLength(512);
    expect(Date.parse(retried?.attempts[0]?.at ?? '')).not.toBeNaN();

    const pages: string[] = [];
    let cursor: string | null = null;
    do {
      const url: string = `/v1/deliveries?publisherId=${ids.publisherId}&limit=2${cursor ? `&cursor=${cursor}` : ''}`;
      const page = (await t.app.inject({ method: 'GET', url, headers: auth() })).json();
      pages.push(...page.items.map((d: { id: string }) => d.id));
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).toHaveLength(5);
    expect(new Set(pages).size).toBe(5);
    const ordered = await t.sql`select id from deliveries order by created_at desc, id desc`;
    expect(pages).toEqual(ordered.map((r) => r.id));

    const none = await t.app.inject({ method: 'GET', url: '/v1/deliveries?state=expired', headers: auth() });
    expect(none.json()).toEqual({ items: [], nextCursor: null });
    const one = await t.app.inject({ method: 'GET', url: `/v1/deliveries/${deliveryIds[0]}`, headers: auth() });
    expect(one.json()).toMatchObject({ id: deliveryIds[0], state: 'delivered' });
  });

  it('needs admin or finance, and rejects bad filters with the contract error shape', async () => {
    const s = await setup(() => ({ status: 200 }));
    const [finance, analyst] = [await token(s, 'finance'), await token(s, 'analyst')];
    const get = (url: string, headers = {}) => s.t.app.inject({ method: 'GET', url, headers });
    expect((await get('/v1/deliveries')).statusCode).toBe(401);
    expect((await get('/v1/deliveries', auth(analyst))).statusCode).toBe(403);
    expect((await get('/v1/deliveries', auth(finance))).statusCode).toBe(200);
    const bad = await get('/v1/deliveries?state=lost&limit=0', auth());
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.details.map((d: { path: string }) => d.path).sort()).toEqual(['limit', 'state']);
    expect((await get('/v1/deliveries?cursor=bm9wZQ', auth())).json().error.details).toEqual([{ path: 'cursor', message: expect.any(String) }]);
    expect((await get('/v1/deliveries/dlv_nope', auth())).statusCode).toBe(404);
  });
});

describe('POST /v1/deliveries/:id/replay', () => {
  it('sends one more try of a delivered delivery with the same webhook-id; admin only; 404 unknown; 409 while in flight', async () => {
    let hang = false;
    const s = await setup(() => (hang ? 'hang' : { status: 200 }), { deliveryTimeoutS: 1.5 });
    const { t, rx, ids } = s;
    const [id] = (await insertConversionsWithDeliveries(t.sql, ids, 1, { refireWindowS: 60 })).deliveryIds as [string];
    await waitForState(t.sql, id, 'delivered');
    const finance = await token(s, 'finance');
    const url = `/v1/deliveries/${id}/replay`;
    expect((await t.app.inject({ method: 'POST', url, headers: auth(finance) })).statusCode).toBe(403);
    expect((await t.app.inject({ method: 'POST', url: '/v1/deliveries/dlv_nope/replay', headers: auth() })).statusCode).toBe(404);

    const res = await t.app.inject({ method: 'POST', url, headers: auth() });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ state: 'delivered', attemptCount: 2 });
    expect(rx.received.map((r) => r.webhookId)).toEqual([id, id]);
    expect(rx.received.every((r) => r.signatureError === undefined)).toBe(true);

    hang = true;
    const slow = t.app.inject({ method: 'POST', url, headers: auth() });
    await rx.waitFor((r) => r.length === 3);
    const clash = await t.app.inject({ method: 'POST', url, headers: auth() });
    expect(clash.statusCode).toBe(409);
    const timedOut = (await slow).json();
    // A failed replay of a delivered delivery changes nothing but the log.
    expect(timedOut).toMatchObject({ state: 'delivered', lastStatusCode: 200, attemptCount: 3 });
    expect(timedOut.attempts.at(-1)).toMatchObject({ statusCode: null, replay: true, error: 'no answer within 1500 ms' });
  });
});

describe('metrics', () => {
  it('exposes deliveries by state, attempt latency, queue depth and the age of the oldest due delivery', async () => {
    const s = await setup(() => ({ status: 200 }));
    const { deliveryIds } = await insertConversionsWithDeliveries(s.t.sql, s.ids, 2, { refireWindowS: 60 });
    for (const id of deliveryIds) await waitForState(s.t.sql, id, 'delivered');
    const text = (await s.t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/^postback_engine_delivery_attempts_total\{result="delivered"\} 2$/m);
    expect(text).toMatch(/^postback_engine_deliveries_finished_total\{state="delivered"\} 2$/m);
    expect(text).toMatch(/^postback_engine_delivery_attempt_duration_seconds_count\{result="delivered"\} 2$/m);
    expect(text).toMatch(/^postback_engine_deliveries_open\{state="pending"\} 0$/m);
    expect(text).toMatch(/^postback_engine_delivery_queue_depth 0$/m);
    expect(text).toMatch(/^postback_engine_delivery_oldest_due_age_seconds 0$/m);
    expect(text).toMatch(/^postback_engine_delivery_attempts_in_flight 0$/m);
  });

  it('queue depth and oldest age count due deliveries nobody has taken', async () => {
    const s = await setup(() => ({ status: 200 }));
    await s.t.engine.deliveries.stop();
    await insertConversionsWithDeliveries(s.t.sql, s.ids, 3, { refireWindowS: 60 });
    await s.t.sql`update deliveries set next_attempt_at = now() - interval '42 seconds'`;
    await new Promise((r) => setTimeout(r, 1100)); // past the stats cache
    const text = (await s.t.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toMatch(/^postback_engine_delivery_queue_depth 3$/m);
    expect(text).toMatch(/^postback_engine_deliveries_open\{state="pending"\} 3$/m);
    const age = Number(/^postback_engine_delivery_oldest_due_age_seconds (\S+)$/m.exec(text)?.[1]);
    expect(age).toBeGreaterThanOrEqual(42);
  });
});
