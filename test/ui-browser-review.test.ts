import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createToken, get, post } from './helpers/admin.js';
import { expectAccessible, hasChromium, launchBrowser, openUi, screenshot, signIn, visibleTabs, type UiPage } from './helpers/browser.js';
import { FAST_DELIVERY, startReceiver, waitForState, type Receiver } from './helpers/delivery-receiver.js';
import { seedCatalog, startTestEngine, type TestEngine } from './helpers/engine.js';
import { conversionRow, deliveryRows, postConversion, reviewRows, type Seeded } from './helpers/review.js';

/**
 * The analysts' review queue in a real Chromium against a real engine: the queue in the API's order
 * (payout × score), moving and deciding with the keyboard, the approved conversion's outbound postback
 * arriving at the publisher, and the database after each decision.
 */

const run = hasChromium();

describe.skipIf(!run)('the review queue in a browser', () => {
  let t: TestEngine;
  let rx: Receiver;
  let s: Seeded;
  let analyst: { id: string; token: string };
  let browser: Browser;
  let ui: UiPage;
  let page: Page;
  /** Flagged conversions, most money at risk first: the queue's order. */
  let big: { conversionId: string; clickid: string; txid: string };
  let middle: { conversionId: string; clickid: string; txid: string };
  let small: { conversionId: string; clickid: string; txid: string };

  beforeAll(async () => {
    [rx, browser] = await Promise.all([startReceiver(), launchBrowser()]);
    t = await startTestEngine(FAST_DELIVERY);
    // Default fraud rules: a postback milliseconds after its click is ctit_too_short, flagged.
    s = await seedCatalog(t.app, { publisher: { postbackUrl: `${rx.url}/pb?c={clickid}`, method: 'GET' }, offer: { fraud: {} } });
    rx.secret = (s.publisher as unknown as { secret: string }).secret;
    analyst = await createToken(t.app, 'analyst');
    // One offer per payout, so each postback pays what its offer says (no payout_mismatch) and, with the
    // same single rule firing, the payout alone orders the queue.
    const flaggedAt = async (payout: string) => {
      const offer = await post(t.app, '/v1/offers', { advertiserId: s.advertiser.id, name: `Offer ${payout}`, url: 'https://adv.example/lp?cid={clickid}', payout, currency: 'USD', fraud: {} });
      expect(offer.statusCode, offer.body).toBe(201);
      const pb = await postConversion(t.app, { ...s, offer: offer.json() });
      expect(pb).toMatchObject({ decision: 'flagged', reasons: ['ctit_too_short'] });
      return pb;
    };
    big = await flaggedAt('9.00');
    middle = await flaggedAt('5.00');
    small = await flaggedAt('3.00');
    const base = await t.app.listen({ port: 0, host: '127.0.0.1' });
    ui = await openUi(browser, base);
    page = ui.page;
  });
  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await rx?.close();
  });

  const queue = () => page.getByRole('table', { name: /Flagged conversions/ });
  const queueIds = async () => (await queue().locator('tbody tr[data-id]').evaluateAll((rows) => rows.map((r) => (r as HTMLElement).dataset.id)));
  const detailHeading = (id: string) => page.getByRole('heading', { name: id });

  it('signs in as an analyst and sees the flagged conversions in the API order, the first one opened', async () => {
    await signIn(page, analyst.token);
    // Which tabs each role sees is test/ui-browser.test.ts's business; here only that finance's are hidden.
    const tabs = await visibleTabs(page);
    expect(tabs).toContain('Review queue');
    for (const financeOnly of ['Reconciliation', 'Payouts', 'FX rates', 'Audit']) expect(tabs).not.toContain(financeOnly);
    await expect.poll(queueIds).toEqual([big.conversionId, middle.conversionId, small.conversionId]);
    await detailHeading(big.conversionId).waitFor();
    await expect.poll(() => page.getByRole('tab', { name: /Review queue/ }).textContent()).toMatch(/3$/);
    await expectAccessible(page, 'the review queue');
    await screenshot(page, 'review-queue');
    expect(ui.problems).toEqual([]);
  });

  /** Decisions wait UNDO_SECONDS behind an Undo button (pending-decision.js); the page's clock jumps over it. */
  const sendPendingDecision = async () => {
    // The delay the page itself uses, read from its own module (a string, so vitest leaves the import alone).
    const seconds = await page.evaluate<number>("import('/ui/pending-decision.js').then((m) => m.UNDO_SECONDS)");
    await page.clock.fastForward(seconds * 1000 + 100);
  };
  const toast = () => page.locator('#toast').getByText(/^(Approved|Rejected|Not approved|Not rejected)/);

  it('j moves down, a approves with a note: after the undo delay the conversion is accepted and its postback reaches the publisher', async () => {
    await page.keyboard.press('j');
    await detailHeading(middle.conversionId).waitFor();
    await page.keyboard.press('n');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('review-note');
    await page.keyboard.type('known lead form, autofill');
    await page.keyboard.press('Escape');
    // Escape leaves the note; the shortcuts work again from the selected row.
    await expect.poll(() => page.evaluate(() => document.activeElement?.tagName)).toBe('TR');
    await page.keyboard.press('a');

    // The queue moves on at once; the decision waits behind Undo and nothing is written yet.
    await detailHeading(small.conversionId).waitFor();
    await expect.poll(queueIds).toEqual([big.conversionId, small.conversionId]);
    await page.getByText(`Approving ${middle.conversionId}`).waitFor();
    expect(await reviewRows(t.sql, middle.conversionId)).toEqual([]);
    expect(await deliveryRows(t.sql, middle.conversionId)).toEqual([]);

    await sendPendingDecision();
    await expect.poll(() => toast().textContent()).toBe(`Approved ${middle.conversionId} (by analyst token).`);
    expect(await conversionRow(t.sql, middle.conversionId)).toMatchObject({ decision: 'accepted', review_state: 'approved', status: 'approved' });
    const trail = await reviewRows(t.sql, middle.conversionId);
    expect(trail.map((r) => [r.decision, r.note, r.reviewer_token_id])).toEqual([['approve', 'known lead form, autofill', analyst.id]]);
    const [delivery, ...more] = await deliveryRows(t.sql, middle.conversionId);
    expect(more).toEqual([]);
    await waitForState(t.sql, delivery?.id as string, 'delivered');
    const arrived = rx.received.filter((r) => r.webhookId === delivery?.id);
    expect(arrived.map((r) => [r.method, r.url, r.signatureError])).toEqual([['GET', `/pb?c=${middle.clickid}`, undefined]]);
    // The other two were never released.
    expect(rx.received).toHaveLength(1);

    const api = (await get(t.app, `/v1/conversions/${middle.conversionId}`, analyst.token)).json();
    expect(api).toMatchObject({ decision: 'accepted', reviewState: 'approved', deliveries: [{ id: delivery?.id, state: 'delivered' }] });
    expect(ui.problems).toEqual([]);
  });

  it('the approved conversion shows its delivery as delivered once reviewed ones are included', async () => {
    await page.getByLabel('Include reviewed').check();
    await expect.poll(queueIds).toEqual([big.conversionId, middle.conversionId, small.conversionId]);
    await queue().getByText(middle.conversionId).click();
    await detailHeading(middle.conversionId).waitFor();
    const deliveries = page.getByRole('table', { name: 'Deliveries' });
    await expect.poll(() => deliveries.getByRole('row').nth(1).textContent()).toMatch(/delivered.*HTTP 200/);
    await expect.poll(() => page.getByRole('table', { name: 'Review trail' }).textContent()).toContain('known lead form, autofill');
    await page.getByLabel('Include reviewed').uncheck();
    await expect.poll(queueIds).toEqual([big.conversionId, small.conversionId]);
  });

  it('u undoes a rejection before it is sent: nothing is written, even after the delay', async () => {
    await queue().getByText(big.conversionId).click();
    await detailHeading(big.conversionId).waitFor();
    await page.keyboard.press('r');
    await page.getByText(`Rejecting ${big.conversionId}`).waitFor();
    await expect.poll(queueIds).toEqual([small.conversionId]);
    await page.keyboard.press('u');
    await expect.poll(() => toast().textContent()).toBe(`Not rejected: ${big.conversionId} is back in the queue.`);
    await expect.poll(queueIds).toEqual([big.conversionId, small.conversionId]);
    await detailHeading(big.conversionId).waitFor();
    await sendPendingDecision();
    expect(await reviewRows(t.sql, big.conversionId)).toEqual([]);
    expect(await conversionRow(t.sql, big.conversionId)).toMatchObject({ decision: 'flagged', review_state: 'none' });
  });

  it('k moves up, r rejects: the conversion is rejected, no postback leaves, and the queue holds the last one', async () => {
    await queue().getByText(small.conversionId).click();
    await detailHeading(small.conversionId).waitFor();
    await page.keyboard.press('k');
    await detailHeading(big.conversionId).waitFor();
    await page.keyboard.press('r');
    await detailHeading(small.conversionId).waitFor();
    await expect.poll(queueIds).toEqual([small.conversionId]);
    await sendPendingDecision();
    await expect.poll(() => toast().textContent()).toBe(`Rejected ${big.conversionId} (by analyst token).`);

    expect(await conversionRow(t.sql, big.conversionId)).toMatchObject({ decision: 'rejected', review_state: 'rejected' });
    expect((await reviewRows(t.sql, big.conversionId)).map((r) => [r.decision, r.note, r.reviewer_token_id])).toEqual([['reject', null, analyst.id]]);
    expect(await deliveryRows(t.sql, big.conversionId)).toEqual([]);
    const api = (await get(t.app, `/v1/conversions/${big.conversionId}`, analyst.token)).json();
    expect(api).toMatchObject({ decision: 'rejected', reviewState: 'rejected', deliveries: [] });
    // The one left is untouched, and the API's queue agrees with the page.
    expect(await conversionRow(t.sql, small.conversionId)).toMatchObject({ decision: 'flagged', review_state: 'none' });
    const apiQueue = (await get(t.app, '/v1/reviews/queue', analyst.token)).json();
    expect(apiQueue.items.map((c: { id: string }) => c.id)).toEqual([small.conversionId]);
    await expect.poll(() => page.getByRole('tab', { name: /Review queue/ }).textContent()).toMatch(/1$/);
    expect(rx.received).toHaveLength(1);
    expect(ui.problems).toEqual([]);
  });

  it('letters typed in the note are text, not decisions', async () => {
    await page.getByLabel(/Note/).fill('');
    await page.getByLabel(/Note/).pressSequentially('ar');
    expect(await page.getByLabel(/Note/).inputValue()).toBe('ar');
    await sendPendingDecision();
    expect(await reviewRows(t.sql, small.conversionId)).toEqual([]);
    expect(await conversionRow(t.sql, small.conversionId)).toMatchObject({ decision: 'flagged', review_state: 'none' });
  });

  it('with single-key shortcuts switched off, a does nothing', async () => {
    await page.getByLabel('Single-key shortcuts').uncheck();
    await queue().getByText(small.conversionId).click();
    await page.keyboard.press('a');
    await sendPendingDecision();
    expect(await reviewRows(t.sql, small.conversionId)).toEqual([]);
    expect(await queueIds()).toEqual([small.conversionId]);
    await page.getByLabel('Single-key shortcuts').check();
  });
});
