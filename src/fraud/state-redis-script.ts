import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Plan } from './state-keys.js';

/**
 * One conversion as one Redis script: the same commands a MULTI would send (ZADD NX, trims, counts,
 * PEXPIRE, MGET), run atomically in one round trip. A script rather than a MULTI because the client
 * encodes and parses one command instead of ~25: the MULTI cost about 250 µs of CPU per postback in
 * the client, the script a fraction of that (reports/bench/fraud-scoring.ts).
 *
 * KEYS are every key of the plan; ARGV[1] is the plan's shape as JSON, whose numbers are indexes
 * into KEYS and whose scores are strings, passed to Redis verbatim (a Lua number would be reformatted).
 * Returns a flat list of integers, in the order `decodeCounts` reads them.
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
local function zrecord(z)
  local k = KEYS[z.k]
  redis.call('ZADD', k, 'NX', z.score, m)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', z.cutoff)
  redis.call('PEXPIRE', k, z.ttl)
  return k
end
for _, a in ipairs(p.a) do
  local k = zrecord(a)
  out[#out + 1] = redis.call('ZCOUNT', k, a.from, '+inf')
  out[#out + 1] = clicks(a.c, a.n)
end
local set = KEYS[p.c.k]
redis.call('SADD', set, m)
redis.call('PEXPIRE', set, p.c.ttl)
out[#out + 1] = redis.call('SCARD', set)
local o = zrecord(p.o)
out[#out + 1] = redis.call('ZCOUNT', o, p.o.today, '+inf')
out[#out + 1] = redis.call('ZCOUNT', o, p.o.from, '+inf')
out[#out + 1] = clicks(p.o.c, p.o.n)
if p.s then
  local s = zrecord(p.s)
  out[#out + 1] = redis.call('ZCOUNT', s, p.s.from, '+inf')
  out[#out + 1] = clicks(p.s.c, p.s.n)
end
return out
`;

const SHA = createHash('sha1').update(OBSERVE_SCRIPT).digest('hex');

type ZArgs = { k: number; score: string; cutoff: string; ttl: string; from: string; c: number; n: number };

/** The plan as KEYS and the JSON shape the script reads. */
export function encodePlan(plan: Plan, ttl: { address: number; offer: number; segment: number }): { keys: string[]; shape: string } {
  const keys: string[] = [];
  const key = (k: string) => keys.push(k);
  /** Appends a run of keys; returns where it starts in KEYS (1-based, as Lua counts). */
  const range = (list: readonly string[]) => {
    const c = keys.length + 1;
    for (const k of list) key(k);
    return c;
  };
  // Literals of one shape rather than spreads: this runs for every postback.
  const a: ZArgs[] = plan.addresses.map((addr) => ({
    k: key(addr.zset),
    score: String(plan.at),
    cutoff: `(${plan.addressCutoff}`,
    ttl: String(ttl.address),
    from: String(plan.addressFrom),
    c: range(addr.clickKeys),
    n: addr.clickKeys.length,
  }));
  const c = { k: key(plan.click.set), ttl: String(plan.click.ttlMs) };
  const o = plan.offer;
  const offer = {
    k: key(o.zset),
    score: String(plan.at),
    cutoff: `(${o.cutoff}`,
    ttl: String(ttl.offer),
    today: String(o.todayFrom),
    from: String(o.baselineFrom),
    c: range(o.dayKeys),
    n: o.dayKeys.length,
  };
  const sg = plan.segment;
  const s: ZArgs | undefined = sg
    ? { k: key(sg.zset), score: String(sg.score), cutoff: `(${sg.cutoff}`, ttl: String(ttl.segment), from: String(sg.from), c: range(sg.clickKeys), n: sg.clickKeys.length }
    : undefined;
  return { keys, shape: JSON.stringify({ m: plan.member, a, c, o: offer, s }) };
}

/** EVALSHA, loading the script on the first NOSCRIPT (a fresh or failed-over Redis). */
export async function runObserveScript(redis: Redis, keys: string[], shape: string): Promise<number[]> {
  try {
    return (await redis.evalsha(SHA, keys.length, ...keys, shape)) as number[];
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return (await redis.eval(OBSERVE_SCRIPT, keys.length, ...keys, shape)) as number[];
  }
}
