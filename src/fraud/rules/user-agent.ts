import { isbot, isbotMatch } from 'isbot';
import { z } from 'zod';
import { defineRule, measured, notEvaluated, type RuleContext, type RuleOutcome } from '../rule.js';

/**
 * The user's software. Bot detection uses the maintained `isbot` pattern list, with one exception:
 * the HTTP stacks of mobile apps (okhttp, Dalvik, CFNetwork), which an advertiser forwarding its
 * app's traffic honestly reports as the user agent and which isbot's generic "name/version" pattern
 * would otherwise call a bot.
 *
 * Two strengths of the same finding. A crawler, a headless browser or anything that declares itself
 * automation (Googlebot, HeadlessChrome, "Mozilla/5.0 (compatible; XyzBot)") never converts
 * honestly: full points, it flags alone. A bare HTTP library (curl, python-requests, node, Go) is a
 * script too, but some networks fire clicks server to server through one, and API clients that
 * create test traffic look the same: fewer points (`httpClientPoints`), so it flags only with
 * another signal. A click without any User-Agent counts as an HTTP library.
 *
 * A user agent that changes between click and conversion is compared by operating-system family
 * only: an in-app browser and the system browser, or two browsers on one device, differ in every
 * other detail honestly. iOS, iPadOS and macOS are one family because iPadOS Safari announces itself
 * as a Mac.
 */

const APP_HTTP_CLIENT = /^(okhttp|Dalvik|CFNetwork)\/|\bCFNetwork\/\d/i;
const SHOWN_UA_CHARS = 200;

export type OsFamily = 'apple' | 'android' | 'windows' | 'chromeos' | 'linux';

export function osFamily(ua: string): OsFamily | undefined {
  if (/Android|Dalvik\//i.test(ua)) return 'android';
  if (/iPhone|iPad|iPod|Macintosh|Mac OS X|CFNetwork\/|Darwin\//i.test(ua)) return 'apple';
  if (/Windows NT|Windows Phone|Win64|WOW64/i.test(ua)) return 'windows';
  if (/\bCrOS\b/.test(ua)) return 'chromeos';
  if (/Linux|X11/i.test(ua)) return 'linux';
  return undefined;
}

/** Real traffic repeats a few thousand user agents; isbot's pattern costs microseconds a call. */
const VERDICT_CACHE_SIZE = 10_000;
const verdicts = new Map<string, boolean>();

export function isBotUserAgent(ua: string): boolean {
  let verdict = verdicts.get(ua);
  if (verdict === undefined) {
    verdict = !APP_HTTP_CLIENT.test(ua) && isbot(ua);
    if (verdicts.size >= VERDICT_CACHE_SIZE) verdicts.clear();
    verdicts.set(ua, verdict);
  }
  return verdict;
}

export const uaMismatch = defineRule({
  code: 'ua_mismatch',
  category: 'client',
  description: "The user agent the advertiser saw convert runs another operating system than the click's.",
  inputs: ['click user agent', 'postback ua'],
  points: 20,
  settings: {},
  defaults: {},
  evaluate(ctx) {
    const converted = ctx.input.userAgent;
    if (!converted) return notEvaluated('the postback has no ua field');
    const click = ctx.input.click;
    if (!click) return notEvaluated('the click row was not found');
    if (!click.userAgent) return notEvaluated('the click has no user agent');
    const a = osFamily(click.userAgent);
    const b = osFamily(converted);
    if (!a || !b) return notEvaluated(`operating system not recognised in the ${!a ? 'click' : 'postback'} user agent`);
    return measured(a !== b, { value: { click: a, ua: b }, threshold: 'same operating-system family', scope: 'click user agent vs postback ua' });
  },
});

const DECLARED_AUTOMATION = /bot\b|crawl|spider|slurp|headless|phantomjs|selenium|puppeteer|playwright|lighthouse|scanner|archiver/i;

export type BotKind = 'automation' | 'http-client';

/** undefined for a browser (or an app's HTTP stack); otherwise which kind of bot. */
export function botKind(ua: string): BotKind | undefined {
  if (!isBotUserAgent(ua)) return undefined;
  return ua.startsWith('Mozilla/') || DECLARED_AUTOMATION.test(ua) ? 'automation' : 'http-client';
}

export const botUserAgent = defineRule({
  code: 'bot_user_agent',
  category: 'client',
  description: 'The click or the conversion came from a crawler, a headless browser or an HTTP library rather than a browser.',
  inputs: ['click user agent', 'postback ua (optional)'],
  points: 50,
  settings: {
    httpClientPoints: z.number().int().min(0).max(100).describe('points when the agent is a bare HTTP library (curl, python-requests) rather than declared automation'),
    missingIsBot: z.boolean().describe('a click without a User-Agent header counts as an HTTP library (every browser sends one)'),
  },
  defaults: { httpClientPoints: 40, missingIsBot: true },
  evaluate(ctx, s) {
    const candidates = agents(ctx);
    if (candidates.length === 0) return notEvaluated('the click row was not found and the postback has no ua field');
    let library: RuleOutcome | undefined;
    for (const { scope, ua } of candidates) {
      if (ua === null) {
        if (s.missingIsBot) library ??= measured(true, { value: null, scope, points: s.httpClientPoints, note: 'no User-Agent header; every browser sends one' });
        continue;
      }
      const kind = botKind(ua);
      if (!kind) continue;
      const hit = { value: ua.slice(0, SHOWN_UA_CHARS), threshold: `isbot pattern "${isbotMatch(ua) ?? ''}"`, scope };
      // Declared automation is the stronger finding: it wins over a library seen on the other side.
      if (kind === 'automation') return measured(true, { ...hit, note: 'crawler, headless browser or declared automation' });
      library ??= measured(true, { ...hit, points: s.httpClientPoints, note: 'an HTTP library, not a browser' });
    }
    return library ?? measured(false, { scope: candidates.map((c) => c.scope).join(' and '), threshold: 'isbot patterns' });
  },
});

function agents(ctx: RuleContext): { scope: string; ua: string | null }[] {
  const list: { scope: string; ua: string | null }[] = [];
  const click = ctx.input.click;
  if (click) list.push({ scope: 'click user agent', ua: click.userAgent && click.userAgent.length > 0 ? click.userAgent : null });
  if (ctx.input.userAgent) list.push({ scope: 'postback ua', ua: ctx.input.userAgent });
  return list;
}
