import { randomBytes } from 'node:crypto';
import type { SimCatalog } from './catalog.js';
import {
  fabricatedClickId,
  FOREIGN_SERVER,
  postbackFields,
  signedPostback,
  staleTs,
  tamperPayout,
  unsignedPostback,
  type Answer,
  type SentRequest,
  type SimClient,
} from './http.js';
import { publisherKey, segmentKey, type ClickSpec, type Label, type OfferKey, type PostbackSpec, type Session, type Step } from './plan.js';
import type { TwinClicks } from './twin-clicks.js';

/**
 * Runs the sessions against the engine over HTTP, `concurrency` sessions at a time, each session's
 * steps in order, and records what the engine answered to every postback attempt.
 */

export type Attempt = {
  label: Label;
  status: number;
  /** The error code of a refusal (`bad_signature`, `invalid_click`...), with its reason if any. */
  code?: string;
  conversionId?: string;
  decision?: 'accepted' | 'flagged' | 'rejected';
  reasons: string[];
  duplicate: boolean;
  /** Aggregate patterns only: whether the rule's minimum volume was already reached when it was sent. */
  pastMinimum?: boolean;
  ctitS?: number;
};

export type DriveResult = { attempts: Attempt[]; clicks: number; errors: string[] };

type Context = { clickId?: string; converted?: { id: string; offer: OfferKey; spec: PostbackSpec }; last?: { req: SentRequest; fields: [string, string][]; spec: PostbackSpec; offer: OfferKey } };

export class Driver {
  private readonly attempts: Attempt[] = [];
  private readonly errors: string[] = [];
  private clicks = 0;
  /** Conversions committed per volume key, and clicks answered per offer: what "past minimum" is judged on. */
  private readonly committed = new Map<string, number>();
  private readonly offerClicks = new Map<OfferKey, number>();
  private readonly segmentClicks = new Map<string, number>();

  /** The client and twins are the HTTP and database sides: Pick so that a test can stand in for the engine. */
  constructor(
    private readonly client: Pick<SimClient, 'click' | 'send'>,
    private readonly catalog: SimCatalog,
    private readonly twins: Pick<TwinClicks, 'mint'>,
    private readonly onStep: () => void,
  ) {}

  async run(sessions: Session[], concurrency: number): Promise<DriveResult> {
    let next = 0;
    const worker = async () => {
      while (next < sessions.length) {
        const session = sessions[next++] as Session;
        const ctx: Context = {};
        for (const step of session) {
          try {
            await this.step(step, ctx);
          } catch (err) {
            this.errors.push(`${step.t}: ${err instanceof Error ? err.message : String(err)}`);
            break; // the rest of the session depends on this step
          } finally {
            this.onStep();
          }
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { attempts: this.attempts, clicks: this.clicks, errors: this.errors };
  }

  private async step(step: Step, ctx: Context): Promise<void> {
    const { signer } = this.catalog;
    switch (step.t) {
      case 'click': {
        ctx.clickId = await this.client.click(this.catalog.offers[step.click.offer].id, this.publisherId(step.click), step.click);
        this.clicks++;
        this.offerClicks.set(step.click.offer, (this.offerClicks.get(step.click.offer) ?? 0) + 1);
        for (const key of [segmentKey(step.click), publisherKey(step.click)]) this.segmentClicks.set(key, (this.segmentClicks.get(key) ?? 0) + 1);
        return;
      }
      case 'convert': {
        const converted = step.click === 'previous' ? ctx.converted : undefined;
        const offer = step.click === 'previous' ? converted?.offer : step.click.offer;
        if (!offer) throw new Error('a repeat conversion without an earlier one');
        const id = converted?.id ?? (await this.twins.mint(step.click as ClickSpec, step.ctitS));
        ctx.converted = { id, offer, spec: step.postback };
        const fields = postbackFields(id, step.postback);
        const req = signedPostback(signer, step.postback.method, fields);
        ctx.last = { req, fields, spec: step.postback, offer };
        await this.attempt(step.label, req, offer, step.ctitS);
        return;
      }
      case 'replay': {
        const last = ctx.last;
        if (!last) throw new Error('a replay without a postback to replay');
        const req =
          step.how === 'exact'
            ? last.req
            : step.how === 'stale'
              ? signedPostback(signer, last.spec.method, last.fields, { tsS: staleTs() })
              : step.how === 'tamper'
                ? tamperPayout(last.req, inflate(this.catalog.offers[last.offer].payout))
                : signedPostback(signer, last.spec.method, last.fields.map(([k, v]) => [k, k === 'txid' ? (step.txid as string) : v]));
        await this.attempt(step.label, req, last.offer);
        return;
      }
      case 'forge': {
        const clickid = step.how === 'fabricated-click' ? fabricatedClickId() : ctx.clickId;
        if (!clickid) throw new Error('a forged postback without a click');
        const fields = postbackFields(clickid, step.postback);
        const req =
          step.how === 'wrong-key'
            ? signedPostback({ advertiserId: signer.advertiserId, key: randomBytes(32) }, step.postback.method, fields)
            : step.how === 'unsigned'
              ? unsignedPostback(signer.advertiserId, fields)
              : step.how === 'wrong-address'
                ? signedPostback(signer, step.postback.method, fields, { from: FOREIGN_SERVER })
                : signedPostback(signer, step.postback.method, fields);
        await this.attempt(step.label, req);
        return;
      }
    }
  }

  private publisherId(click: ClickSpec): string {
    const p = this.catalog.publishers[click.publisher];
    if (!p) throw new Error(`unknown simulated publisher ${click.publisher}`);
    return p.id;
  }

  private async attempt(label: Label, req: SentRequest, offer?: OfferKey, ctitS?: number): Promise<void> {
    const pastMinimum = label.volume && offer ? this.pastMinimum(label.volume, offer) : undefined;
    const answer = await this.client.send(req);
    const attempt = toAttempt(label, answer, pastMinimum, ctitS);
    if (label.volume && attempt.status === 200 && !attempt.duplicate) {
      this.committed.set(label.volume.key, (this.committed.get(label.volume.key) ?? 0) + 1);
    }
    this.attempts.push(attempt);
  }

  /** The baseline a rate rule needs is the rest of the offer: the offer's clicks outside the segment judged. */
  private pastMinimum(v: NonNullable<Label['volume']>, offer: OfferKey): boolean {
    const rest = (this.offerClicks.get(offer) ?? 0) - (this.segmentClicks.get(v.key) ?? 0);
    return (this.committed.get(v.key) ?? 0) >= v.min && (v.offerClicks === undefined || rest >= v.offerClicks);
  }
}

function toAttempt(label: Label, a: Answer, pastMinimum: boolean | undefined, ctitS: number | undefined): Attempt {
  const base = { label, status: a.status, ...(pastMinimum !== undefined ? { pastMinimum } : {}), ...(ctitS !== undefined ? { ctitS } : {}) };
  if (a.status !== 200) {
    const error = (a.body.error ?? {}) as { code?: string; reason?: string };
    return { ...base, code: [error.code ?? `http_${a.status}`, error.reason].filter(Boolean).join(':'), reasons: [], duplicate: false };
  }
  return {
    ...base,
    conversionId: a.body.conversionId as string,
    decision: a.body.decision as Attempt['decision'],
    reasons: (a.body.reasons as string[]) ?? [],
    duplicate: a.body.duplicate === true,
  };
}

/** What a man in the middle writes into a captured postback: five times the offer's payout. */
function inflate(payout: string): string {
  const [whole = '0', cents = '00'] = payout.split('.');
  const minor = (Number(whole) * 100 + Number(cents)) * 5;
  return `${Math.floor(minor / 100)}.${String(minor % 100).padStart(2, '0')}`;
}
