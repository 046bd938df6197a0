import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NOTE_MAX } from '../src/review/route.js';
import { countRows, createToken, expectApiError, startSecondNode, type SecondNode } from './helpers/admin.js';
import { FAST_DELIVERY, startReceiver, waitForState, type Receiver } from './helpers/delivery-receiver.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { conversionRow, deliveryRows, postConversion, review, reviewRows, type Seeded } from './helpers/review.js';

/**
 * POST /v1/conversions/:id/review (CONTRACT §8) through HTTP against a real receiver: roles, the
 * contract's errors, the audit trail and the conversion after each call, and the outbound postback
 * an approval releases, exactly once, even with approvals racing on two nodes.
 */

let t: TestEngine;
let rx: Receiver;
let s: Seeded;
let analyst: { id: string; token: string };
let finance: { id: string; token: string };

beforeAll(async () => {
  rx = await startReceiver();
  t = await startTestEngine(FAST_DELIVERY);
  // Default fraud rules: a postback milliseconds after its click is ctit_too_short, flagged.
  s = await seedCatalog(t.app, { publisher: { postbackUrl: `${rx.url}/pb?c={clickid}`, method: 'GET' }, offer: { fraud: {} } });
  rx.secret = (s.publisher as unknown as { secret: string }).secret;
  analyst = await createToken(t.app, 'analyst');
  finance = await createToken(t.app, 'finance');
});
afterAll(async () => {
  await t.close();
  await rx.close();
});

const receivedFor = (deliveryId: string) => rx.received.filter((r) => r.webhookId === deliveryId);

describe('POST /v1/conversions/:id/review', () => {
  it('approving a flagged conversion records who decided, accepts it and releases its postback once', async () => {
    const pb = await postConversion(t.app, s);
    expect(pb.decision).toBe('flagged');
    expect(pb.reasons).toEqual(['ctit_too_short']);
    expect(await deliveryRows(t.sql, pb.conversionId)).toEqual([]);

    const res = await review(t.app, pb.conversionId, { decision: 'approve', note: 'known lead form, autofill' }, analyst.token);
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json();
    expect(body).toMatchObject({
      id: expect.stringMatching(/^\d+$/),
      conversionId: pb.conversionId,
      decision: 'approve',
      note: 'known lead form, autofill',
      by: 'analyst token',
      tokenId: analyst.id,
      releasedDeliveryId: expect.stringMatching(/^dlv_/),
      conversion: { id: pb.conversionId, decision: 'accepted', reviewState: 'approved', reasons: ['ctit_too_short'], score: 40 },
    });
    expect(Date.parse(body.at)).toBeGreaterThan(Date.now() - 60_000);

    const trail = await reviewRows(t.sql, pb.conversionId);
    expect(trail).toEqual([
      { id: BigInt(body.id), decision: 'approve', note: 'known lead form, autofill', reviewer_token_id: analyst.id, reviewer_name: 'analyst token', created_at: new Date(body.at) },
    ]);
    // The score and its reasons stay as the scorer saw them; only the decision is the analyst's.
    expect(await conversionRow(t.sql, pb.conversionId)).toEqual({ decision: 'accepted', review_state: 'approved', score: 40, reasons: ['ctit_too_short'], status: 'approved' });
    const deliveries = await deliveryRows(t.sql, pb.conversionId);
    expect(deliveries.map((d) => d.id)).toEqual([body.releasedDeliveryId]);
    // Its refire window runs from the approval, not from the conversion.
    expect((deliveries[0]?.deadline_at as Date).getTime() - new Date(body.at).getTime()).toBe(FAST_DELIVERY.refireWindowS! * 1000);

    await waitForState(t.sql, body.releasedDeliveryId, 'delivered');
    expect(receivedFor(body.releasedDeliveryId)).toHaveLength(1);
    expect(receivedFor(body.releasedDeliveryId)[0]?.signatureError).toBeUndefined();
    expect(receivedFor(body.releasedDeliveryId)[0]?.url).toBe(`/pb?c=${pb.clickid}`);

    // A second approval is recorded, releases nothing, and the publisher hears nothing more.
    const again = await review(t.app, pb.conversionId, { decision: 'approve' }, analyst.token);
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json()).toMatchObject({ decision: 'approve', note: null, releasedDeliveryId: null, conversion: { decision: 'accepted', reviewState: 'approved' } });
    expect((await reviewRows(t.sql, pb.conversionId)).map((r) => r.decision)).toEqual(['approve', 'approve']);
    expect((await deliveryRows(t.sql, pb.conversionId)).map((d) => d.id)).toEqual([body.releasedDeliveryId]);
    await new Promise((r) => setTimeout(r, 500)); // ten polls of the fast worker
    expect(rx.received.filter((r) => r.url === `/pb?c=${pb.clickid}`)).toHaveLength(1);

    // The detail view carries the whole trail, oldest first.
    const detail = (await t.app.inject({ method: 'GET', url: `/v1/conversions/${pb.conversionId}`, headers: auth(analyst.token) })).json();
    expect(detail.reviews).toEqual([
      { id: body.id, decision: 'approve', note: 'known lead form, autofill', by: 'analyst token', tokenId: analyst.id, at: body.at },
      { id: again.json().id, decision: 'approve', note: null, by: 'analyst token', tokenId: analyst.id, at: again.json().at },
    ]);
  });

  it('rejecting holds the postback back; approving later releases it; rejecting after that is recorded but recalls nothing', async () => {
    const pb = await postConversion(t.app, s);
    const rejected = await review(t.app, pb.conversionId, { decision: 'reject', note: 'same device as 40 others' }, analyst.token);
    expect(rejected.statusCode, rejected.body).toBe(201);
    expect(rejected.json()).toMatchObject({ decision: 'reject', releasedDeliveryId: null, conversion: { decision: 'rejected', reviewState: 'rejected' } });
    expect(await conversionRow(t.sql, pb.conversionId)).toMatchObject({ decision: 'rejected', review_state: 'rejected' });
    expect(await deliveryRows(t.sql, pb.conversionId)).toEqual([]);

    const approved = await review(t.app, pb.conversionId, { decision: 'approve', note: 'advertiser confirmed the sale' }, analyst.token);
    expect(approved.statusCode).toBe(201);
    const released = approved.json().releasedDeliveryId as string;
    expect(released).toMatch(/^dlv_/);
    expect(await conversionRow(t.sql, pb.conversionId)).toMatchObject({ decision: 'accepted', review_state: 'approved' });

    const reversed = await review(t.app, pb.conversionId, { decision: 'reject', note: 'chargeback' }, analyst.token);
    expect(reversed.json()).toMatchObject({ releasedDeliveryId: null, conversion: { decision: 'rejected', reviewState: 'rejected' } });
    expect(await conversionRow(t.sql, pb.conversionId)).toMatchObject({ decision: 'rejected', review_state: 'rejected' });
    expect((await deliveryRows(t.sql, pb.conversionId)).map((d) => d.id)).toEqual([released]);
    expect((await reviewRows(t.sql, pb.conversionId)).map((r) => [r.decision, r.note])).toEqual([
      ['reject', 'same device as 40 others'],
      ['approve', 'advertiser confirmed the sale'],
      ['reject', 'chargeback'],
    ]);
  });

  it('approving a sale the advertiser rejected releases nothing', async () => {
    const pb = await postConversion(t.app, s, { extra: '&status=rejected' });
    expect(pb.decision).toBe('flagged');
    const res = await review(t.app, pb.conversionId, { decision: 'approve' }, analyst.token);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ releasedDeliveryId: null, conversion: { decision: 'accepted', status: 'rejected' } });
    expect(await deliveryRows(t.sql, pb.conversionId)).toEqual([]);
  });

  it('may override an accepted conversion, which already had its postback', async () => {
    // ctit_too_short off: an ordinary accepted conversion, whose postback the intake already queued.
    const plain = await seedCatalog(t.app, {
      publisher: { postbackUrl: `${rx.url}/pb2?c={clickid}`, method: 'GET' },
      offer: { fraud: { rules: { ctit_too_short: { mode: 'off' } } } },
    });
    const pb = await postConversion(t.app, plain);
    expect(pb.decision).toBe('accepted');
    const before = await deliveryRows(t.sql, pb.conversionId);
    expect(before).toHaveLength(1);
    const approved = await review(t.app, pb.conversionId, { decision: 'approve' }, analyst.token);
    expect(approved.json()).toMatchObject({ releasedDeliveryId: null, conversion: { decision: 'accepted', reviewState: 'approved' } });
    const rejected = await review(t.app, pb.conversionId, { decision: 'reject', note: 'override' }, analyst.token);
    expect(rejected.json()).toMatchObject({ conversion: { decision: 'rejected', reviewState: 'rejected' } });
    expect((await deliveryRows(t.sql, pb.conversionId)).map((d) => d.id)).toEqual(before.map((d) => d.id));
  });

  it('answers for analysts and admins; finance gets 403 before its body is read, no token 401', async () => {
    const pb = await postConversion(t.app, s);
    const admin = await review(t.app, pb.conversionId, { decision: 'reject' });
    expect(admin.statusCode, admin.body).toBe(201);
    expect(admin.json()).toMatchObject({ by: 'ADMIN_TOKEN', tokenId: 'env' });

    const rows = await countRows(t.sql, 'reviews');
    // Role before body: a finance token with an unparseable body is still a 403.
    expectApiError(
      await t.app.inject({ method: 'POST', url: `/v1/conversions/${pb.conversionId}/review`, headers: { ...auth(finance.token), 'content-type': 'application/json' }, payload: '{' }),
      403,
      'forbidden',
    );
    expectApiError(await review(t.app, pb.conversionId, { decision: 'approve' }, finance.token), 403, 'forbidden');
    expectApiError(await t.app.inject({ method: 'POST', url: `/v1/conversions/${pb.conversionId}/review`, payload: { decision: 'approve' } }), 401, 'unauthorized');
    expectApiError(await review(t.app, pb.conversionId, { decision: 'approve' }, 'pbe_not-a-real-token'), 401, 'unauthorized');
    expect(await countRows(t.sql, 'reviews')).toBe(rows);
    expect(await conversionRow(t.sql, pb.conversionId)).toMatchObject({ decision: 'rejected', review_state: 'rejected' });
  });

  it('refuses bad bodies with the contract 400 and an unknown conversion with 404, changing nothing', async () => {
    const pb = await postConversion(t.app, s);
    const rows = await countRows(t.sql, 'reviews');
    const bad = async (payload: unknown, paths: string[]) => expectApiError(await review(t.app, pb.conversionId, payload, analyst.token), 400, 'invalid_request', paths);
    await bad({}, ['decision']);
    await bad({ decision: 'accept' }, ['decision']);
    await bad({ decision: 'approve', note: 'x'.repeat(NOTE_MAX + 1) }, ['note']);
    await bad({ decision: 'approve', note: 'nul\u0000byte' }, ['note']);
    await bad({ decision: 'approve', note: 42 }, ['note']);
    await bad({ decision: 'approve', by: 'someone else' }, ['by']);
    await bad([], ['']);
    expectApiError(
      await t.app.inject({ method: 'POST', url: `/v1/conversions/${pb.conversionId}/review`, headers: { ...auth(analyst.token), 'content-type': 'application/json' }, payload: '{"decision":' }),
      400,
      'invalid_request',
    );
    expectApiError(
      await t.app.inject({
        method: 'POST',
        url: `/v1/conversions/${pb.conversionId}/review`,
        headers: { ...auth(analyst.token), 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'decision=approve',
      }),
      415,
      'unsupported_media_type',
    );
    expectApiError(await review(t.app, 'cv_does_not_exist', { decision: 'approve' }, analyst.token), 404, 'not_found');
    expect(await countRows(t.sql, 'reviews')).toBe(rows);
    expect(await conversionRow(t.sql, pb.conversionId)).toMatchObject({ decision: 'flagged', review_state: 'none' });
    expect(await deliveryRows(t.sql, pb.conversionId)).toEqual([]);

    // The longest note allowed is kept whole.
    const longest = 'n'.repeat(NOTE_MAX);
    expect((await review(t.app, pb.conversionId, { decision: 'reject', note: longest }, analyst.token)).statusCode).toBe(201);
    expect((await reviewRows(t.sql, pb.conversionId))[0]?.note).toBe(longest);
  });
});

describe('approvals racing', () => {
  let b: SecondNode;
  beforeAll(async () => {
    b = await startSecondNode(t.url, FAST_DELIVERY);
  });
  afterAll(async () => {
    await b.close();
  });

  it('twenty simultaneous approvals on two nodes release exactly one postback', async () => {
    const pb = await postConversion(t.app, s);
    expect(pb.decision).toBe('flagged');
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => review(i % 2 ? b.app : t.app, pb.conversionId, { decision: 'approve', note: `approval ${i}` }, analyst.token)),
    );
    expect(answers.map((a) => a.statusCode)).toEqual(Array(20).fill(201));
    const released = answers.map((a) => a.json().releasedDeliveryId).filter((d): d is string => d !== null);
    expect(released).toHaveLength(1);
    expect((await deliveryRows(t.sql, pb.conversionId)).map((d) => d.id)).toEqual(released);
    expect(await reviewRows(t.sql, pb.conversionId)).toHaveLength(20);

    const id = released[0] as string;
    await waitForState(t.sql, id, 'delivered');
    await new Promise((r) => setTimeout(r, 500));
    expect(receivedFor(id)).toHaveLength(1);
    const [row] = await t.sql`select attempts from deliveries where id = ${id}`;
    expect(row?.attempts).toBe(1);
  });
});
