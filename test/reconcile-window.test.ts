import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cronWindow, validateCron } from '../src/reconcile/schedule.js';
import { sliceWindow } from '../src/reconcile/steps.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { insertConversion, reconcile, removeRunFiles, type RunBody } from './helpers/reconcile.js';

/**
 * Window arithmetic with data placed in time: every unit is counted once, in the window and hour of
 * its first sighting, however runs and their slices cut the time line.
 */

const H = 3_600_000;
// A day that ended two days ago, so every pixel is far past the grace period.
const DAY = Math.floor(Date.now() / (24 * H)) * 24 * H - 2 * 24 * H;
const at = (hours: number, minutes = 0) => new Date(DAY + hours * H + minutes * 60_000);

let t: TestEngine;
let ids: { advertiserId: string; offerId: string; publisherId: string };

async function pixelAt(clickId: string, txid: string, when: Date, event = 'conversion') {
  await t.sql`insert into pixel_events (click_id, click_created_at, advertiser_id, offer_id, publisher_id, event, txid, created_at)
              values (${clickId}, ${when}, ${ids.advertiserId}, ${ids.offerId}, ${ids.publisherId}, ${event}, ${txid}, ${when})`;
}
const s2sAt = (clickId: string, txid: string, when: Date) => insertConversion(t.sql, { ...ids, clickId, txid, payoutMinor: 250n, currency: 'USD', createdAt: when });
const run = (from: Date, to: Date) => reconcile(t.app, { from: from.toISOString(), to: to.toISOString() });

function byHour(r: RunBody): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const row of r.rows) {
    const { s2s, pixel, matched, s2sOnly, pixelOnly } = row as Record<string, number>;
    out[String(row.hour).slice(11, 13)] = { s2s, pixel, matched, s2sOnly, pixelOnly } as Record<string, number>;
  }
  return out;
}

beforeAll(async () => {
  t = await startTestEngine();
  const seeded = await seedCatalog(t.app);
  ids = { advertiserId: seeded.advertiser.id, offerId: seeded.offer.id, publisherId: seeded.publisher.id };
  // A: two pixel events six hours apart (across a slice boundary), then its S2S: one matched unit at 04h.
  await pixelAt('clk-a', 'tx-a', at(4, 10), 'lead');
  await pixelAt('clk-a', 'tx-a', at(10, 10), 'sale');
  await s2sAt('clk-a', 'tx-a', at(10, 11));
  // B: S2S at 13h, its pixel at 11h: first seen at 11h.
  await s2sAt('clk-b', 'tx-b', at(13, 0));
  await pixelAt('clk-b', 'tx-b', at(11, 30));
  // C: pixel at 23h, its S2S the next day: matched, at 23h.
  await pixelAt('clk-c', 'tx-c', at(23, 50));
  await s2sAt('clk-c', 'tx-c', at(24, 20));
  // F: pixel only, two events in two slices (02h and 08h): one unit, at 02h.
  await pixelAt('clk-f', 'tx-f', at(2, 0), 'lead');
  await pixelAt('clk-f', 'tx-f', at(8, 0), 'sale');
  // D: S2S only at 05h; E: pixel only at 17h (recovered by the first run that sees it).
  await s2sAt('clk-d', 'tx-d', at(5, 0));
  await pixelAt('clk-e', 'tx-e', at(17, 0));
});
afterAll(async () => {
  if (t) await removeRunFiles(t.sql, t.engine.reconciler.reportsDir);
  await t?.close();
});

describe('window arithmetic', () => {
  it('slices a window at UTC multiples of six hours', () => {
    const slices = sliceWindow({ from: at(4, 30), to: at(19) }).map((s) => [s.from.getTime() - DAY, s.to.getTime() - DAY].map((ms) => ms / 60_000));
    expect(slices).toEqual([
      [270, 360],
      [360, 720],
      [720, 1080],
      [1080, 1140],
    ]);
  });

  it('counts each unit once, at its first sighting, in the run over the whole day', async () => {
    const day = await run(at(0), at(24));
    expect(byHour(day)).toEqual({
      '02': { s2s: 0, pixel: 1, matched: 0, s2sOnly: 0, pixelOnly: 1 },
      '04': { s2s: 1, pixel: 1, matched: 1, s2sOnly: 0, pixelOnly: 0 },
      '05': { s2s: 1, pixel: 0, matched: 0, s2sOnly: 1, pixelOnly: 0 },
      '11': { s2s: 1, pixel: 1, matched: 1, s2sOnly: 0, pixelOnly: 0 },
      '17': { s2s: 0, pixel: 1, matched: 0, s2sOnly: 0, pixelOnly: 1 },
      '23': { s2s: 1, pixel: 1, matched: 1, s2sOnly: 0, pixelOnly: 0 },
    });
    expect(day.totals).toMatchObject({ s2s: 4, pixel: 5, matched: 3, s2sOnly: 1, pixelOnly: 2, recovered: 2 });
    const recovered = await t.sql`select txid, created_at from conversions where source = 'pixel' order by txid`;
    expect(recovered.map((r) => [r.txid, (r.created_at as Date).getTime()])).toEqual([
      ['tx-e', at(17).getTime()],
      ['tx-f', at(2).getTime()],
    ]);
  });

  it('adds up the same over any cut of the time line', async () => {
    const cuts = [0, 7, 11.5, 12, 17.01, 24].map((h) => at(Math.floor(h), Math.round((h % 1) * 60)));
    const parts: RunBody[] = [];
    for (let i = 0; i + 1 < cuts.length; i++) parts.push(await run(cuts[i] as Date, cuts[i + 1] as Date));
    const sum: Record<string, number> = {};
    for (const p of parts) for (const [k, v] of Object.entries(p.totals)) sum[k] = (sum[k] ?? 0) + v;
    expect(sum).toMatchObject({ s2s: 4, pixel: 5, matched: 3, s2sOnly: 1, pixelOnly: 2, recovered: 0 });
    // A's S2S (10:11) and second pixel (10:10), and F's second pixel (08:00), fall in 07:00-11:30,
    // but both were first seen before 07:00.
    expect(parts.map((p) => [p.totals.s2s, p.totals.pixel, p.totals.matched])).toEqual([
      [2, 2, 1],
      [0, 0, 0],
      [1, 1, 1],
      [0, 1, 0],
      [1, 1, 1],
    ]);
  });
});

describe('the schedule', () => {
  it('reconciles REFIRE_WINDOW_S back from the tick, in whole seconds, the same on every node', () => {
    const w = cronWindow(new Date('2026-03-10T12:15:00.734Z'), 259_200);
    expect(w).toEqual({ from: new Date('2026-03-07T12:15:00.000Z'), to: new Date('2026-03-10T12:15:00.000Z') });
  });

  it('refuses an expression node-cron cannot run, naming the variable', () => {
    expect(() => validateCron('*/15 * * * *')).not.toThrow();
    expect(() => validateCron('*/2 * * * * *')).not.toThrow();
    for (const bad of ['every 15 minutes', '61 * * * *', '* * * *']) expect(() => validateCron(bad)).toThrow(/RECONCILE_CRON/);
  });
});
