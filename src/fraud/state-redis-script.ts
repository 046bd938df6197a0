import { createHash } from 'node:crypto';
import type { RedisClient } from '../state/redis.js';
import { CTIT_BUCKETS } from './ctit-distribution.js';
import type { CohortPlan, Plan } from './state-keys.js';

/**
 * One conversion as one Redis script: the same commands a MULTI would send (ZADD NX, trims, counts,
 * PEXPIRE, MGET), run atomically in one round trip. A script rather than a MULTI because the client
 * encodes and parses one command instead of ~25: the MULTI cost about 250 µs of CPU per postback in
 * the client, the script a fraction of that (reports/bench/fraud-scoring.ts).
 *
 * KEYS are the plan's keys, less the closed buckets whose sums the node keeps (closed-buckets.ts).
 * ARGV[1] is the plan's shape as JSON, whose numbers are indexes into KEYS and whose scores are
 * strings, passed to Redis verbatim (a Lua number would be reformatted).
 * Returns a flat list of integers, in the order RedisFraudState.observe reads them.
 *
 * A shape may hold any of the parts (addresses `a`, click `c`, offer `o` with its cohorts and
 * histograms): one Redis runs them all in one call; a Redis Cluster runs one call per part, each
 * over keys of one hash tag, and their replies concatenated in the same order are the same list.
 */
export const OBSERVE_SCRIPT = `
local p = cjson.decode(ARGV[1])
local m = p.m
local out = {}
local function clicks(first, n)
  if n == 0 then return 0 end
  local total = 0
  for _, v in ipairs(redis.call('MGET', unpack(KEYS, first, first + n - 1))) do
    if v then total = total + tonumber(v) end
  end
  return total
end
-- A counter group: the closed buckets' sum when asked for (r; the node keeps it otherwise), then the current bucket.
local function counters(g)
  if g.r then out[#out + 1] = clicks(g.c, g.n) end
  out[#out + 1] = clicks(g.u, 1)
end
local function zrecord(z)
  local k = KEYS[z.k]
  local added = redis.call('ZADD', k, 'NX', z.score, m)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', z.cutoff)
  redis.call('PEXPIRE', k, z.ttl)
  return k, added
end
-- An address's publisher spread: its per-hour hashes of publisher -> clicks summed, then the number
-- of publishers and the clicks of the largest.
local function spread(first, n)
  local per = {}
  local publishers, top = 0, 0
  for i = first, first + n - 1 do
    local kv = redis.call('HGETALL', KEYS[i])
    for j = 1, #kv, 2 do
      local before = per[kv[j]]
      if not before then publishers = publishers + 1 end
      local sum = (before or 0) + tonumber(kv[j + 1])
      per[kv[j]] = sum
      if sum > top then top = sum end
    end
  end
  out[#out + 1] = publishers
  out[#out + 1] = top
end
for _, a in ipairs(p.a or {}) do
  local k = zrecord(a)
  out[#out + 1] = redis.call('ZCOUNT', k, a.from, '+inf')
  counters(a)
  if a.q then spread(a.q, a.nq) end
end
if p.c then
  local set = KEYS[p.c.k]
  redis.call('SADD', set, m)
  redis.call('PEXPIRE', set, p.c.ttl)
  out[#out + 1] = redis.call('SCARD', set)
end
if p.o then
  local o, fresh = zrecord(p.o)
  out[#out + 1] = redis.call('ZCOUNT', o, p.o.today, '+inf')
  out[#out + 1] = redis.call('ZCOUNT', o, p.o.from, '+inf')
  counters(p.o)
  -- Click cohorts: the segment (publisher + sub1), then the publisher's every sub1.
  for _, g in ipairs({ p.s, p.p }) do
    local k = zrecord(g)
    out[#out + 1] = redis.call('ZCOUNT', k, g.from, '+inf')
    counters(g)
  end
  -- CTIT histograms, summed bucket by bucket over n day hashes. Fields beyond nb (from an older
  -- bucket layout) are ignored.
  local function histogram(first, n, nb)
    local h = {}
    for i = 1, nb do h[i] = 0 end
    for i = first, first + n - 1 do
      local kv = redis.call('HGETALL', KEYS[i])
      for j = 1, #kv, 2 do
        local b = tonumber(kv[j]) + 1
        if h[b] then h[b] = h[b] + tonumber(kv[j + 1]) end
      end
    end
    for i = 1, nb do out[#out + 1] = h[i] end
  end
  -- Per level (offer, publisher, segment): the conversion counts once, in today's hash, when the
  -- offer's set did not hold it yet; then the closed days' sum when asked for, and today's.
  if p.h then
    for _, g in ipairs(p.h.g) do
      if fresh == 1 then
        redis.call('HINCRBY', KEYS[g.u], p.h.b, 1)
        redis.call('PEXPIRE', KEYS[g.u], p.h.ttl)
      end
      if g.r then histogram(g.c, g.n, p.h.nb) end
      histogram(g.u, 1, p.h.nb)
    end
  end
end
return out
`;

const SHA = createHash('sha1').update(OBSERVE_SCRIPT).digest('hex');

/**
 * c, n: the closed buckets' keys in KEYS (1-based, as Lua counts; n = 0 sends none); u: the current
 * bucket's; r: whether the closed sum is wanted in the reply (not when the node keeps it: the reply
 * then carries only the current bucket, which for the histograms halves the integers to decode).
 */
type Counters = { c: number; n: number; u: number; r: 1 | undefined };
type ZArgs = { k: number; score: string; cutoff: string; ttl: string; from: string } & Counters;
/** q, nq: an address's publisher hashes in KEYS, when its spread is wanted. */
type AddressArgs = ZArgs & { q: number | undefined; nq: number | undefined };

/**
 * The plan as KEYS and the JSON shape the script reads. `readClosed` says, per baseline group, whether
 * the closed buckets must be read (the node does not have their sum); address groups always are.
 * One call, or with `split` (a Redis Cluster) one per hash tag: each address, the click, the offer.
 */
export function encodePlan(
  plan: Plan,
  ttl: { address: number; offer: number; segment: number; ctit: number },
  readClosed: { offer: boolean; segment: boolean; publisher: boolean; ctit: readonly [boolean, boolean, boolean] },
  split = false,
): ScriptCall[] {
  let keys: string[] = [];
  const key = (k: string) => keys.push(k);
  const calls: ScriptCall[] = [];
  /** Ends a call: the keys so far and the shape that indexes them (KEYS positions restart per call). */
  const call = (shape: object) => {
    calls.push({ keys, shape: JSON.stringify(shape) });
    keys = [];
  };
  const counters = (list: readonly string[], closed: boolean): Counters => {
    const c = keys.length + 1;
    const from = closed ? 0 : list.length - 1;
    for (let i = from; i < list.length; i++) key(list[i] as string);
    return { c, n: closed ? list.length - 1 : 0, u: keys.length, r: closed ? 1 : undefined };
  };
  // Literals rather than spreads: this runs for every postback.
  const a: AddressArgs[] = plan.addresses.map((addr) => {
    const k = key(addr.zset);
    const g = counters(addr.clickKeys, true);
    const q = addr.publisherKeys ? keys.length + 1 : undefined;
    if (addr.publisherKeys) for (const pk of addr.publisherKeys) key(pk);
    const nq = addr.publisherKeys?.length;
    const args: AddressArgs = { k, score: String(plan.at), cutoff: `(${plan.addressCutoff}`, ttl: String(ttl.address), from: String(plan.addressFrom), c: g.c, n: g.n, u: g.u, r: g.r, q, nq };
    if (split) call({ m: plan.member, a: [args] });
    return args;
  });
  const c = { k: key(plan.click.set), ttl: String(plan.click.ttlMs) };
  if (split) call({ m: plan.member, c });
  const o = plan.offer;
  const ok = key(o.zset);
  const og = counters(o.dayKeys, readClosed.offer);
  const offer = { k: ok, score: String(plan.at), cutoff: `(${o.cutoff}`, ttl: String(ttl.offer), today: String(o.todayFrom), from: String(o.baselineFrom), c: og.c, n: og.n, u: og.u, r: og.r };
  const cohort = (plan: CohortPlan, closed: boolean): ZArgs => {
    const k = key(plan.zset);
    const g = counters(plan.clickKeys, closed);
    return { k, score: String(plan.score), cutoff: `(${plan.cutoff}`, ttl: String(ttl.segment), from: String(plan.from), c: g.c, n: g.n, u: g.u, r: g.r };
  };
  // Both or neither (RedisFraudState reads them as a pair): the script's loop stops at the first missing one.
  const both = plan.segment && plan.publisher ? { segment: plan.segment, publisher: plan.publisher } : undefined;
  const s = both && cohort(both.segment, readClosed.segment);
  const pub = both && cohort(both.publisher, readClosed.publisher);
  let h: { b: string; ttl: string; nb: number; g: Counters[] } | undefined;
  const pc = plan.ctit;
  if (pc) {
    const [offerDays, publisherDays, segmentDays] = readClosed.ctit;
    const g = [counters(pc.offerDays, offerDays), counters(pc.publisherDays, publisherDays), counters(pc.segmentDays, segmentDays)];
    h = { b: String(pc.bucket), ttl: String(ttl.ctit), nb: CTIT_BUCKETS, g };
  }
  call(split ? { m: plan.member, o: offer, s, p: pub, h } : { m: plan.member, a, c, o: offer, s, p: pub, h });
  return calls;
}

/** A script call: its KEYS and the shape (ARGV[1]) whose indexes point into them. */
export type ScriptCall = { keys: string[]; shape: string };

/** The calls at once; their replies joined in order, as one call's would be. */
export async function runObserveScript(redis: RedisClient, calls: readonly ScriptCall[]): Promise<number[]> {
  if (calls.length === 1) {
    const [only] = calls as [ScriptCall];
    return runCall(redis, only.keys, only.shape);
  }
  const replies = await Promise.all(calls.map((c) => runCall(redis, c.keys, c.shape)));
  return replies.flat();
}

/** EVALSHA, loading the script on the first NOSCRIPT (a fresh or failed-over Redis). */
async function runCall(redis: RedisClient, keys: string[], shape: string): Promise<number[]> {
  try {
    return (await redis.evalsha(SHA, keys.length, ...keys, shape)) as number[];
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return (await redis.eval(OBSERVE_SCRIPT, keys.length, ...keys, shape)) as number[];
  }
}
