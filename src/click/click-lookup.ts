import type { BatchWriter } from '../db/batch-writer.js';
import type { Sql } from '../db/database.js';
import { clickKey, findClicks, type ClickRow, type StoredClick } from './click-store.js';

/**
 * The stored click a postback is scored against. Lookups made in the same turn of the event loop
 * share one query: one round trip per postback was most of the engine's PostgreSQL traffic on the
 * intake path. A click still in this node's write buffer (milliseconds old) is answered from it.
 */

const MAX_PER_QUERY = 500;

type Pending = { id: string; createdAt: Date; advertiserId: string; resolve: (click: StoredClick | undefined) => void; reject: (err: unknown) => void };

export class ClickLookup {
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly sql: Sql,
    private readonly unwritten: BatchWriter<ClickRow>,
  ) {}

  /** `advertiserId`: the click's own (its ID's verified claim), which places the row on Citus. */
  find(id: string, createdAt: Date, advertiserId: string): Promise<StoredClick | undefined> {
    const buffered = this.unwritten.get(id);
    if (buffered && buffered.createdAt.getTime() === createdAt.getTime() && buffered.advertiserId === advertiserId) return Promise.resolve(buffered);
    return new Promise((resolve, reject) => {
      this.pending.push({ id, createdAt, advertiserId, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const all = this.pending;
    this.pending = [];
    for (let i = 0; i < all.length; i += MAX_PER_QUERY) void this.answer(all.slice(i, i + MAX_PER_QUERY));
  }

  private async answer(batch: Pending[]): Promise<void> {
    try {
      const found = await findClicks(this.sql, batch);
      const byKey = new Map(found.map((c) => [clickKey(c.id, c.createdAt, c.advertiserId), c]));
      for (const p of batch) p.resolve(byKey.get(clickKey(p.id, p.createdAt, p.advertiserId)));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
