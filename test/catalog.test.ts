import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Catalog } from '../src/catalog/catalog.js';
import { connect, type Sql } from '../src/db/database.js';
import { post } from './helpers/admin.js';
import { startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * The in-memory catalog under races between its poller and an admin write. Each test holds one query
 * of a second catalog's reload at a gate, so the interleaving is forced rather than hoped for.
 */

let t: TestEngine;
let pool: Sql;
beforeAll(async () => {
  t = await startTestEngine();
  pool = connect(t.url, { max: 4 });
});
afterAll(async () => {
  await pool?.end({ timeout: 1 });
  await t?.close();
});

function deferred() {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/**
 * An sql whose `n`-th query from arming runs at once but hands back its result only when `release()`
 * is called; `executed` resolves when that result has arrived (so it reflects the database as it was).
 */
function gatedSql(target: Sql) {
  let countdown = 0;
  let gate = deferred();
  let executed = deferred();
  const sql = new Proxy(target, {
    apply(fn, thisArg, args) {
      const query = Reflect.apply(fn as never, thisArg, args) as Promise<unknown>;
      if (countdown > 0 && --countdown === 0) {
        const arrived = executed;
        const held = gate;
        return (async () => {
          const result = await query;
          arrived.resolve();
          await held.promise;
          return result;
        })();
      }
      return query;
    },
  });
  return {
    sql,
    arm(n: number) {
      countdown = n;
      gate = deferred();
      executed = deferred();
      return { executed: executed.promise, release: gate.resolve };
    },
  };
}

async function createAdvertiser(name: string): Promise<string> {
  const res = await post(t.app, '/v1/advertisers', { name, auth: ['hmac'] });
  expect(res.statusCode, res.body).toBe(201);
  return res.json().id;
}

describe('catalog refresh', () => {
  it('a refresh requested after a commit sees that commit, even while an older refresh is in flight', async () => {
    const gated = gatedSql(pool);
    const catalog = new Catalog(gated.sql);
    await catalog.load();

    // The in-flight refresh reads the catalog version, then stalls before it can compare it.
    const held = gated.arm(1);
    const inFlight = catalog.refresh();
    await held.executed;

    const id = await createAdvertiser('Committed after the version was read');
    const mine = catalog.refresh();
    held.release();
    await Promise.all([inFlight, mine]);
    expect(catalog.advertisers.has(id)).toBe(true);
  });

  it('a slow reload that started before a change never overwrites the reload that carries it', async () => {
    const gated = gatedSql(pool);
    const catalog = new Catalog(gated.sql);
    await catalog.load();

    // Query 6 of a load is its last table read (click keys): the data is read, then held.
    const held = gated.arm(6);
    const stale = catalog.load();
    await held.executed;

    const id = await createAdvertiser('Created while a reload was stalled');
    await catalog.load();
    expect(catalog.advertisers.has(id)).toBe(true);

    held.release();
    await stale;
    expect(catalog.advertisers.has(id)).toBe(true);
    expect(catalog.advertisersBySeq.get(catalog.advertisers.get(id)?.seq ?? -1)?.id).toBe(id);
  });
});
