import type { Measurement } from './load.js';
import type { PgCost } from './pg-cost.js';
import { note, phase } from './progress.js';
import { check, machineInfo, quietMachineCheck, type Check, type Machine } from './results.js';
import { measureVariant } from './scenario-postbacks.js';
import { startEngine, stopEngine, type BenchContext, type BenchOptions } from './targets.js';

/**
 * Several engine processes on one box (WORKERS=n: a cluster primary and n engine processes on one
 * port), sharing one PostgreSQL and one redis-server: for each n, distinct durable postbacks and
 * their replays, each with what a postback cost the engine (all its processes), PostgreSQL and
 * Redis in CPU, and the checks of the postbacks scenario (none lost or doubled, every replay a
 * duplicate of its original), plus a clean exit 0 of the whole box on SIGTERM.
 * Redis is required: the engine refuses WORKERS > 1 without it, and n = 1 uses it too so the rows
 * compare like with like.
 */

export type ProcessesRun = {
  processes: number;
  distinct: Measurement;
  duplicates: Measurement;
  /** CPU µs per served distinct postback (a durable conversion) and per served duplicate. */
  perDistinct: CpuPerAnswer;
  perDuplicate: CpuPerAnswer;
  pgCost: PgCost;
  checks: Check[];
};

export type CpuPerAnswer = { engineUs: number | undefined; postgresUs: number | undefined; redisUs: number | undefined };

export type ProcessesResult = {
  scenario: 'processes';
  date: string;
  machine: Machine;
  options: BenchOptions;
  database: string;
  runs: ProcessesRun[];
  checks: Check[];
  note?: string;
};

export const DEFAULT_PROCESS_COUNTS = [1, 2, 4];

function cpuPerAnswer(m: Measurement): CpuPerAnswer {
  const c = m.cpu;
  const us = (cores: number | undefined) => (c === undefined || cores === undefined || m.served <= 0 ? undefined : Math.round(((cores * c.wallS * 1e6) / m.served) * 10) / 10);
  return { engineUs: us(c?.serverCores), postgresUs: us(c?.postgresCores), redisUs: us(c?.redisCores) };
}

export async function runProcessesScenario(ctx: BenchContext, counts: number[], database: string): Promise<ProcessesResult> {
  const result: ProcessesResult = { scenario: 'processes', date: new Date().toISOString(), machine: machineInfo(), options: ctx.options, database, runs: [], checks: [] };
  if (!ctx.redis) {
    result.note = 'redis-server is not on PATH, and WORKERS > 1 needs Redis: not measured (apt-get install -y redis-server)';
    note(result.note);
    return result;
  }
  let guessRps = 1_000;
  for (const n of counts) {
    phase(`== ${n} engine process${n === 1 ? '' : 'es'} on one box, one PostgreSQL, one redis-server`);
    const engine = await startEngine(ctx, 'redis', `processes-${n}`, n);
    try {
      const out = await measureVariant(ctx, engine, guessRps);
      guessRps = out.distinct.rps;
      const exit = await stopEngine(engine);
      out.checks.push(check(`${engine.label}: the box exits 0 on SIGTERM after draining every process`, 0, String(exit), exit === 0));
      result.runs.push({
        processes: n,
        distinct: out.distinct,
        duplicates: out.duplicates,
        perDistinct: { ...cpuPerAnswer(out.distinct), postgresUs: out.pgCost.processCpuUs },
        perDuplicate: cpuPerAnswer(out.duplicates),
        pgCost: out.pgCost,
        checks: out.checks,
      });
      result.checks.push(...out.checks);
    } catch (err) {
      process.stdout.write(`engine output:\n${engine.server.tail()}\n`);
      await stopEngine(engine);
      throw err;
    } finally {
      await engine.database.drop();
    }
  }
  result.checks.unshift(...quietMachineCheck(result.runs.flatMap((r) => [r.distinct, r.duplicates])));
  return result;
}
