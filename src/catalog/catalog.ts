import type { Sql } from '../db/database.js';
import { parseCidrList, type Cidr } from '../net/cidr.js';
import { loadCaps, loadGoals, type Cap, type CapsInput, type Goal, type GoalsInput } from '../offers/terms.js';

/**
 * Each node's in-memory copy of advertisers, offers, publishers and click keys. The hot paths (click
 * redirect, postback intake) read it without touching PostgreSQL. Admin writes bump
 * `catalog_version` and NOTIFY every node in the same transaction, so PostgreSQL delivers the news at
 * commit; the poll of that single row stays as a backstop for a listener that was reconnecting.
 * A notification can still arrive after the creating call has answered, so a miss is confirmed
 * against the database (`findFresh`) before anyone answers 404.
 */

export const CATALOG_POLL_MS = 1000;
export const CATALOG_CHANNEL = 'catalog_changed';
/** Misses remembered until the next reload: enough for a flood of random IDs, bounded in memory. */
export const KNOWN_MISSING_MAX = 10_000;

export type AuthMethod = 'hmac' | 'jwt';
export type JwtSettings = {
  jwksUrl?: string;
  jwks?: { keys: Record<string, unknown>[] };
  issuer: string;
  algorithms?: string[];
};

export type AdvertiserSecret = { id: string; key: Buffer; createdAt: Date };

export type Advertiser = {
  id: string;
  seq: number;
  name: string;
  ipAllowlist: string[];
  allowRanges: Cidr[];
  auth: AuthMethod[];
  jwt: JwtSettings | null;
  rateLimitPerS: number;
  secrets: AdvertiserSecret[];
  createdAt: Date;
  updatedAt: Date;
};

export type Offer = {
  id: string;
  seq: number;
  advertiserId: string;
  name: string;
  url: string;
  payoutMinor: bigint;
  revenueMinor: bigint;
  currency: string;
  /** As stored (what the admin API returns) and parsed (what the intake prices with). */
  goalsInput: GoalsInput;
  goals: Record<string, Goal>;
  capsInput: CapsInput;
  caps: Cap[];
  clickTtlS: number;
  dailyCap: number | null;
  fraud: Record<string, unknown>;
  createdAt: Date;
  updatedAt: Date;
};

export type Publisher = {
  id: string;
  seq: number;
  name: string;
  postbackUrl: string;
  method: 'GET' | 'POST';
  secret: Buffer;
  /** Re-fire the postback on every later status change of a conversion that was sent (CONTRACT §10). */
  onStatusChange: boolean;
  /** The only events this publisher is sent; null: every event. */
  events: string[] | null;
  disabledAt: Date | null;
  disabledReason: string | null;
  createdAt: Date;
  updatedAt: Date;
};

export type ClickKey = { kid: number; secret: Buffer; createdAt: Date };

export class Catalog {
  advertisers = new Map<string, Advertiser>();
  advertisersBySeq = new Map<number, Advertiser>();
  offers = new Map<string, Offer>();
  offersBySeq = new Map<number, Offer>();
  publishers = new Map<string, Publisher>();
  publishersBySeq = new Map<number, Publisher>();
  /** Keys that verify, by kid. */
  clickKeys = new Map<number, ClickKey>();
  /** The newest key: the one that mints. */
  mintingKey: ClickKey | undefined;
  private version = -1n;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  private queuedRefresh: Promise<void> | undefined;
  /** Loads by start order: one that started earlier must never overwrite what a later one applied. */
  private loadsStarted = 0;
  private loadApplied = 0;
  /** IDs confirmed absent since the last reload: a repeated unknown ID costs no query. */
  private readonly knownMissing = new Set<string>();
  private unlisten: (() => Promise<void>) | undefined;

  constructor(
    private readonly sql: Sql,
    private readonly onError: (err: unknown) => void = () => undefined,
    /** Bounds a request's wait for a miss check (the engine's breaker: a 503 in an outage, never a hang). */
    private readonly guard: <T>(work: () => Promise<T>) => Promise<T> = (work) => work(),
  ) {}

  async load(): Promise<void> {
    const ticket = ++this.loadsStarted;
    const [versionRow] = await this.sql<{ version: bigint }[]>`select version from catalog_version`;
    const [advertisers, secrets, offers, publishers, keys] = await Promise.all([
      this.sql`select id, seq, name, ip_allowlist, auth, jwt, rate_limit_per_s, created_at, updated_at from advertisers`,
      this.sql`select id, advertiser_id, secret, created_at from advertiser_secrets where revoked_at is null order by created_at desc`,
      this.sql`select id, seq, advertiser_id, name, url, payout_minor, revenue_minor, currency, goals, caps, click_ttl_s, daily_cap, fraud, created_at, updated_at from offers`,
      this.sql`select id, seq, name, postback_url, method, secret, on_status_change, events, disabled_at, disabled_reason, created_at, updated_at from publishers`,
      this.sql`select kid, secret, created_at from click_keys where retired_at is null order by created_at desc, kid desc`,
    ]);
    const secretsByAdvertiser = new Map<string, AdvertiserSecret[]>();
    for (const s of secrets) {
      const list = secretsByAdvertiser.get(s.advertiser_id) ?? [];
      list.push({ id: s.id, key: s.secret, createdAt: s.created_at });
      secretsByAdvertiser.set(s.advertiser_id, list);
    }
    const nextAdvertisers = new Map<string, Advertiser>();
    const nextAdvertisersBySeq = new Map<number, Advertiser>();
    for (const a of advertisers) {
      const ranges = parseCidrList(a.ip_allowlist);
      const advertiser: Advertiser = {
        id: a.id,
        seq: a.seq,
        name: a.name,
        ipAllowlist: a.ip_allowlist,
        // Stored lists were validated on write; an unparsable one fails closed (matches nothing).
        allowRanges: ranges.ok ? ranges.value : [],
        auth: a.auth,
        jwt: a.jwt,
        rateLimitPerS: a.rate_limit_per_s,
        secrets: secretsByAdvertiser.get(a.id) ?? [],
        createdAt: a.created_at,
        updatedAt: a.updated_at,
      };
      nextAdvertisers.set(advertiser.id, advertiser);
      nextAdvertisersBySeq.set(advertiser.seq, advertiser);
    }
    const nextOffers = new Map<string, Offer>();
    const nextOffersBySeq = new Map<number, Offer>();
    for (const o of offers) {
      const offer: Offer = {
        id: o.id,
        seq: o.seq,
        advertiserId: o.advertiser_id,
        name: o.name,
        url: o.url,
        payoutMinor: o.payout_minor,
        revenueMinor: o.revenue_minor,
        currency: o.currency,
        goalsInput: o.goals,
        goals: loadGoals(o.goals, o.currency),
        capsInput: o.caps,
        caps: loadCaps(o.caps, o.currency),
        clickTtlS: o.click_ttl_s,
        dailyCap: o.daily_cap,
        fraud: o.fraud,
        createdAt: o.created_at,
        updatedAt: o.updated_at,
      };
      nextOffers.set(offer.id, offer);
      nextOffersBySeq.set(offer.seq, offer);
    }
    const nextPublishers = new Map<string, Publisher>();
    const nextPublishersBySeq = new Map<number, Publisher>();
    for (const p of publishers) {
      const publisher: Publisher = {
        id: p.id,
        seq: p.seq,
        name: p.name,
        postbackUrl: p.postback_url,
        method: p.method,
        secret: p.secret,
        onStatusChange: p.on_status_change,
        events: p.events,
        disabledAt: p.disabled_at,
        disabledReason: p.disabled_reason,
        createdAt: p.created_at,
        updatedAt: p.updated_at,
      };
      nextPublishers.set(publisher.id, publisher);
      nextPublishersBySeq.set(publisher.seq, publisher);
    }
    const nextKeys = new Map<number, ClickKey>();
    for (const k of keys) nextKeys.set(k.kid, { kid: k.kid, secret: k.secret, createdAt: k.created_at });
    // A poll that started before an admin write can finish after that write's own reload.
    if (ticket < this.loadApplied) return;
    this.loadApplied = ticket;
    this.advertisers = nextAdvertisers;
    this.advertisersBySeq = nextAdvertisersBySeq;
    this.offers = nextOffers;
    this.offersBySeq = nextOffersBySeq;
    this.publishers = nextPublishers;
    this.publishersBySeq = nextPublishersBySeq;
    this.clickKeys = nextKeys;
    this.mintingKey = keys[0] ? nextKeys.get(keys[0].kid) : undefined;
    this.version = versionRow?.version ?? 0n;
    this.knownMissing.clear();
  }

  /**
   * `find` in the catalog; on a miss, once more after a refresh that sees every change committed
   * before the call. Concurrent misses share one refresh (single flight), and a miss confirmed since
   * the last reload is answered from memory, so unknown IDs cannot turn into a flood of queries.
   * `missKey` names what was looked for, e.g. `offer:off_x`.
   */
  async findFresh<T>(missKey: string, find: (catalog: this) => T | undefined): Promise<T | undefined> {
    const hit = find(this);
    if (hit !== undefined || this.knownMissing.has(missKey)) return hit;
    await this.guard(() => this.refresh());
    const found = find(this);
    if (found === undefined) {
      if (this.knownMissing.size >= KNOWN_MISSING_MAX) this.knownMissing.clear();
      this.knownMissing.add(missKey);
    }
    return found;
  }

  /**
   * Reload when another node (or this one) changed something; resolves once every change committed
   * before the call is loaded. A refresh already in flight may have read the version before the
   * caller's commit, so callers arriving meanwhile share one more refresh queued behind it.
   */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.reloadIfChanged().finally(() => {
        this.refreshing = undefined;
      });
      return this.refreshing;
    }
    this.queuedRefresh ??= this.refreshing
      .catch(() => undefined)
      .then(() => {
        this.queuedRefresh = undefined;
        return this.refresh();
      });
    return this.queuedRefresh;
  }

  private async reloadIfChanged(): Promise<void> {
    const [row] = await this.sql<{ version: bigint }[]>`select version from catalog_version`;
    if (row && row.version !== this.version) await this.load();
  }

  startPolling(intervalMs = CATALOG_POLL_MS): void {
    this.timer = setInterval(() => {
      this.refresh().catch(this.onError);
    }, intervalMs);
    this.timer.unref();
  }

  stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Reload on every catalog NOTIFY. postgres.js re-listens after a lost connection and calls
   * `onlisten` again; notifications sent meanwhile were lost, so that refresh catches up.
   */
  async listen(): Promise<void> {
    const onChange = () => {
      this.refresh().catch(this.onError);
    };
    const { unlisten } = await this.sql.listen(CATALOG_CHANNEL, onChange, onChange);
    this.unlisten = unlisten;
  }

  async stopListening(): Promise<void> {
    const unlisten = this.unlisten;
    this.unlisten = undefined;
    if (unlisten) await unlisten().catch(this.onError);
  }
}

/** Call inside every admin write transaction so all nodes pick the change up: NOTIFY fires at commit. */
export async function bumpCatalogVersion(tx: Sql | import('../db/database.js').TxSql): Promise<void> {
  await tx`
    with bumped as (update catalog_version set version = version + 1 returning version)
    select pg_notify(${CATALOG_CHANNEL}, version::text) from bumped`;
}
