import { mkdtemp, chmod, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connect } from '../../src/db/database.js';
import { startEmbeddedPostgres } from '../../src/db/embedded.js';
import { migrate } from '../../src/db/migrate.js';
import { enqueueDeliveries } from '../../src/delivery/outbox.js';
import { claimDue } from '../../src/delivery/store.js';
import { writeOutcomes } from '../../src/delivery/outcome-writer.js';

const dir = await mkdtemp(path.join(os.tmpdir(), 'probe-'));
await chmod(dir, 0o755);
const pg = await startEmbeddedPostgres(dir, () => undefined, { persistent: false });
const sql = connect(pg.url, { max: 5 });
await migrate(sql);
await sql`insert into advertisers (id, name, auth, rate_limit_per_s) values ('a', 'a', '{hmac}', 1)`;
await sql`insert into offers (id, advertiser_id, name, url, payout_minor, currency, click_ttl_s) values ('o', 'a', 'o', 'u', 1, 'USD', 10)`;
const P = Number(process.argv[2] ?? 1);
for (let i = 0; i < P; i++) await sql`insert into publishers (id, name, postback_url, method, secret) values (${'p' + i}, 'p', 'http://x', 'GET', '\\x00')`;
const N = 20000;
for (let b = 0; b < N / 1000; b++) {
  const rows = Array.from({ length: 1000 }, (_, i) => `n${b}_${i}`);
  const created = await sql`insert into conversions (id, advertiser_id, offer_id, publisher_id, click_id, click_created_at, txid, event, status, payout_minor, currency, decision, score, source)
    select 'cv_' || n, 'a', 'o', ${'p' + (b % P)}, 'ck', now(), 'tx' || n, 'conversion', 'approved', 1, 'USD', 'accepted', 0, 's2s' from unnest(${rows}::text[]) n returning id, created_at, publisher_id`;
  await enqueueDeliveries(sql, created.map((c: any) => ({ conversionId: c.id, publisherId: c.publisher_id, conversionCreatedAt: c.created_at })), 3600);
}
await sql`analyze`;
let claimMs = 0, writeMs = 0, n = 0, cycles = 0;
const t0 = performance.now();
while (n < 5000) {
  let t = performance.now();
  const rows = await claimDue(sql, { workerId: 'w', leaseMs: 60000, want: 64, perPublisher: 8, limitIds: [], limitRooms: [] });
  claimMs += performance.now() - t;
  t = performance.now();
  await writeOutcomes(sql, 'w', rows.map((r) => ({ attempt: { deliveryId: r.id, attemptedAt: new Date(), statusCode: 200, latencyMs: 1, error: null, snippet: 'ok', replay: false }, delivered: true, retryInMs: 0 })));
  writeMs += performance.now() - t;
  n += rows.length; cycles++;
}
console.log({ P, cycles, rowsPerCycle: n / cycles, claimMsAvg: claimMs / cycles, writeMsAvg: writeMs / cycles, perSec: n / ((performance.now() - t0) / 1000) });
const stats = await sql`select n_tup_upd, n_tup_hot_upd, n_dead_tup from pg_stat_user_tables where relname = 'deliveries'`;
console.log(stats);
await sql`select pg_sleep(0.5)`;
const q = `explain (analyze, buffers)
    with recursive heads(publisher_id) as (
    (select publisher_id from deliveries where state in ('pending', 'failed') order by publisher_id limit 1)
    union all
    select (select d.publisher_id from deliveries d
            where d.state in ('pending', 'failed') and d.publisher_id > h.publisher_id
            order by d.publisher_id limit 1)
    from heads h where h.publisher_id is not null
  ),
    rooms as (
      select h.publisher_id, coalesce(l.room, 8) as room
      from heads h
      join publishers p on p.id = h.publisher_id and p.disabled_at is null
      left join unnest('{}'::text[], '{}'::int[]) as l(publisher_id, room) on l.publisher_id = h.publisher_id
      where coalesce(l.room, 8) > 0
    ), candidates as (
      select c.id, c.next_attempt_at
      from rooms r
      cross join lateral (
        select d.id, d.next_attempt_at from deliveries d
        where d.publisher_id = r.publisher_id and d.state in ('pending', 'failed')
          and d.next_attempt_at <= now() and d.deadline_at > now()
          and (d.lease_until is null or d.lease_until <= now())
        order by d.publisher_id, d.next_attempt_at
        limit r.room
        for update skip locked
      ) c
    ), chosen as (
      select id from candidates order by next_attempt_at limit 64
    )
    select * from chosen`;
console.log((await sql.unsafe(q)).map((r: any) => r['QUERY PLAN']).join('\n'));
await sql.end(); await pg.stop(); await rm(dir, { recursive: true, force: true });
