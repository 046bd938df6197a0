import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expandEvidence } from '../src/fraud/evidence.js';
import { createToken, post } from './helpers/admin.js';
import { auth, seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { mintClick, signedGetUrl, uniqueTx } from './helpers/postback.js';
import { freshAddress } from './helpers/review.js';

/**
 * click_flood end to end: clicks through /c and signed postbacks through the intake on an engine
 * whose clock the test moves, so conversions arrive minutes (an honest publisher) or days (a
 * flooding one) after their clicks. The flooder's later conversions are flagged with click_flood,
 * and the review API and the database show the two distributions behind it.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
let clock = new Date('2026-11-14T06:00:00.000Z');
let t: TestEngine;
let analyst: string;

beforeAll(async () => {
  t = await startTestEngine({}, { now: () => clock });
  analyst = (await createToken(t.app, 'analyst')).token;
});
afterAll(async () => {
  await t?.close();
});

type Answer = { conversionId: string; decision: string; reasons: string[] };
type Event = { at: number; kind: 'click' | 'convert'; id: number };

describe('click_flood through HTTP', () => {
  it("flags a flooding publisher's conversions and shows both distributions in the review API", async () => {
    // Volumes lowered for the offer (10 and 30 instead of 20 and 100), which also exercises the override.
    const seeded = await seedCatalog(t.app, { offer: { fraud: { rules: { click_flood: { minConversions: 10, minBaselineConversions: 30 } } } } });
    const flooder = (await post(t.app, '/v1/publishers', { name: 'Flood', postbackUrl: 'https://flood.example/pb?c={clickid}' })).json() as { id: string };
    const honestPub = seeded.publisher.id;
    const secret = (seeded.advertiser.secrets[0] as { secret: string }).secret;

    // 40 honest clicks converting 1 minute to 3 hours later; 14 flooded ones converting 1 to 5 days later.
    const base = clock.getTime();
    const plan = [
      ...Array.from({ length: 40 }, (_, i) => ({ publisherId: honestPub, clickAt: base + i * 10 * 60_000, ctitMs: 60_000 + ((i * 7) % 40) * 4.5 * 60_000 })),
      ...Array.from({ length: 14 }, (_, i) => ({ publisherId: flooder.id, clickAt: base + i * 5 * 60_000, ctitMs: DAY + (i * 4 * DAY) / 13 })),
    ];
    const events: Event[] = plan.flatMap((p, id) => [
      { at: p.clickAt, kind: 'click' as const, id },
      { at: p.clickAt + p.ctitMs, kind: 'convert' as const, id },
    ]);
    events.sort((a, b) => a.at - b.at || (a.kind === 'click' ? -1 : 1));

    const clickIds = new Map<number, string>();
    const answers = new Map<number, Answer>();
    for (const e of events) {
      clock = new Date(e.at);
      const p = plan[e.id] as (typeof plan)[number];
      if (e.kind === 'click') {
        clickIds.set(e.id, await mintClick(t.app, seeded.offer.id, p.publisherId, { ip: freshAddress(), subs: '&sub1=s1' }));
        continue;
      }
      const query = `clickid=${clickIds.get(e.id)}&txid=${uniqueTx()}`;
      const res = await t.app.inject({ method: 'GET', url: signedGetUrl(seeded.advertiser.id, query, secret, Math.floor(e.at / 1000)) });
      expect(res.statusCode, res.body).toBe(200);
      answers.set(e.id, res.json() as Answer);
    }

    const flooded = plan.map((p, id) => ({ p, id })).filter(({ p }) => p.publisherId === flooder.id);
    const reasonsOf = (ids: number[]) => ids.map((id) => answers.get(id)?.reasons.includes('click_flood'));
    // Below 10 conversions the flooder is not judged; from then on every conversion is flagged for it.
    expect(reasonsOf(flooded.slice(0, 9).map((f) => f.id))).toEqual(Array(9).fill(false));
    expect(reasonsOf(flooded.slice(9).map((f) => f.id))).toEqual(Array(5).fill(true));
    const honest = plan.map((p, id) => ({ p, id })).filter(({ p }) => p.publisherId === honestPub);
    expect(honest.every(({ id }) => !answers.get(id)?.reasons.includes('click_flood'))).toBe(true);

    const last = answers.get((flooded.at(-1) as { id: number }).id) as Answer;
    expect(last.decision).toBe('flagged');
    const res = await t.app.inject({ method: 'GET', url: `/v1/conversions/${last.conversionId}`, headers: auth(analyst) });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json() as { score: number; reasons: string[]; evidence: { code: string; [k: string]: unknown }[] };
    const flood = body.evidence.find((e) => e.code === 'click_flood');
    expect(flood).toMatchObject({
      category: 'attribution',
      evaluated: true,
      fired: true,
      points: 40,
      scope: `offer ${seeded.offer.id}, publisher ${flooder.id}`,
      window: '7 UTC days (by conversion time)',
      value: { level: 'publisher', conversions: 14, restConversions: 40, tailShare: 1, restTailShare: 0 },
      threshold: { alpha: 1e-4, minTailShare: 0.3, minTailLift: 3 },
    });
    const value = flood?.value as { segment: number[]; rest: number[]; buckets: string[]; laterBy: number };
    const at = (label: string) => value.buckets.indexOf(label);
    // The honest rest sits between 1 minute and 3 hours, the flooder between 1 and 5 days.
    expect(value.rest.slice(at('1-3m'), at('3-6h')).reduce((a, b) => a + b, 0)).toBe(40);
    expect((value.segment[at('1-3d')] ?? 0) + (value.segment[at('3-7d')] ?? 0)).toBe(14);
    expect(value.laterBy).toBe(1);
    // The row holds the same reasons and evidence the API shows.
    const [row] = await t.sql`select decision, reasons, score, evidence from conversions where id = ${last.conversionId}`;
    expect(row?.decision).toBe('flagged');
    expect(row?.reasons).toEqual(body.reasons);
    expect(row?.reasons).toContain('click_flood');
    expect(expandEvidence(row?.evidence).find((e) => (e as { code: string }).code === 'click_flood')).toEqual(flood);
  });
});
