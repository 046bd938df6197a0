import path from 'node:path';
import { parseArgs } from 'node:util';
import { startDatabaseServer } from './database.js';
import { printGoals, summarizeGoals, writeGoals } from './goals.js';
import { writeIndexHtml } from './html-report.js';
import { processesLines, writeProcesses } from './processes-report.js';
import { startRedis, REPO_ROOT, type RedisServer } from './processes.js';
import { note, phase } from './progress.js';
import { DEFAULT_CONNECTIONS, printSummary, writeScenario, type ScenarioResult } from './results.js';
import { runClicksScenario } from './scenario-clicks.js';
import { runPostbacksScenario } from './scenario-postbacks.js';
import { DEFAULT_PROCESS_COUNTS, runProcessesScenario, type ProcessesResult } from './scenario-processes.js';
import { warmMachine, type BenchContext, type BenchOptions, type Variant } from './targets.js';

/**
 * `npm run bench -- [--scenario clicks|postbacks|processes|all] [--duration 10] [--connections 10]`
 *
 * Ratio benchmarks: every engine figure against the floors (and a bare fastify hello-world)
 * measured in the same run, each server in its own child process, autocannon in this one; the
 * PostgreSQL cost of a durable conversion; the engine with 1, 2 and 4 processes. Results go to
 * reports/bench/results/<scenario>.{json,md}, results/goals.{json,md} and reports/bench/index.html.
 */

type Scenario = 'clicks' | 'postbacks' | 'processes';
const SCENARIOS: Scenario[] = ['clicks', 'postbacks', 'processes'];

const USAGE = `usage: npm run bench -- [options]
  --scenario clicks|postbacks|processes|all
                                    what to measure (default all: the three in turn)
  --processes <n,n,...>             engine process counts (WORKERS) of the processes scenario (default 1,2,4)
  --duration <s>                    seconds per measured run (default 10)
  --connections <n>                 concurrent connections (default 10)
  --warmup <s>                      seconds of warm-up before each measured run (default 3)
  --redis                           also measure the engine with REDIS_URL (a redis-server on a free port;
                                    needs redis-server on PATH). Same as BENCH_REDIS=1
  --clicks <n>                      click IDs to mint for the postback runs (default: sized from the baseline)
  --cpu-prof                        run the engine with node --cpu-prof and summarise the profile
  --quiet-wait <s>                  before each measured run, wait up to this long for other processes
                                    to stop using the CPU (default 30; 0: never wait)
environment: DATABASE_URL  measure against this PostgreSQL (a fresh database is created and dropped);
                           unset: an embedded PostgreSQL in a temporary directory`;

function positive(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min) {
    process.stderr.write(`--${name} must be a whole number ≥ ${min}, got "${raw}"\n${USAGE}\n`);
    process.exit(2);
  }
  return n;
}

function processCounts(raw: string | undefined): number[] {
  if (raw === undefined) return DEFAULT_PROCESS_COUNTS;
  const counts = raw.split(',').map((p) => Number(p.trim()));
  if (counts.length === 0 || counts.some((n) => !Number.isInteger(n) || n < 1)) {
    process.stderr.write(`--processes must be comma-separated whole numbers ≥ 1, got "${raw}"\n${USAGE}\n`);
    process.exit(2);
  }
  return counts;
}

function parseOptions(): { scenarios: Scenario[]; counts: number[]; options: BenchOptions } {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'all' },
      processes: { type: 'string' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      warmup: { type: 'string' },
      redis: { type: 'boolean', default: false },
      clicks: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'quiet-wait': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(USAGE + '\n');
    process.exit(0);
  }
  const scenario = values.scenario as Scenario | 'all';
  if (scenario !== 'all' && !SCENARIOS.includes(scenario)) {
    process.stderr.write(`--scenario must be clicks, postbacks, processes or all, got "${scenario}"\n${USAGE}\n`);
    process.exit(2);
  }
  const clickPool = values.clicks === undefined ? undefined : positive('clicks', values.clicks, 0);
  return {
    scenarios: scenario === 'all' ? SCENARIOS : [scenario],
    counts: processCounts(values.processes),
    options: {
      durationS: positive('duration', values.duration, 10),
      connections: positive('connections', values.connections, DEFAULT_CONNECTIONS),
      warmupS: positive('warmup', values.warmup, 3, 0),
      redis: values.redis || /^(1|true|yes)$/i.test(process.env.BENCH_REDIS ?? ''),
      cpuProf: values['cpu-prof'],
      clickPool,
      quietWaitS: positive('quiet-wait', values['quiet-wait'], 30, 0),
    },
  };
}

async function main(): Promise<void> {
  const { scenarios, counts, options } = parseOptions();
  phase(`scenarios: ${scenarios.join(', ')}; ${options.connections} connections, ${options.durationS} s per run, ${options.warmupS} s warm-up`);

  let redis: RedisServer | undefined;
  const variants: Variant[] = ['memory'];
  if (options.redis || scenarios.includes('processes')) {
    phase('starting redis-server on a free port');
    redis = await startRedis();
    if (redis && options.redis) variants.push('redis');
    if (!redis) note('redis-server is not on PATH: the Redis variant and the processes scenario are skipped (apt-get install -y redis-server)');
  }

  phase(process.env.DATABASE_URL ? 'using the PostgreSQL in DATABASE_URL' : 'starting an embedded PostgreSQL in a temporary directory');
  const db = await startDatabaseServer((line) => note(line));
  const ctx: BenchContext = { options, db, redis };
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    phase('interrupted: stopping (press Ctrl-C again to abandon cleanup)');
  };
  process.on('SIGINT', onSignal);

  const written: string[] = [];
  const results: ScenarioResult[] = [];
  let processes: ProcessesResult | undefined;
  try {
    await warmMachine(ctx);
    for (const scenario of scenarios) {
      if (interrupted) break;
      phase(`== scenario ${scenario}`);
      if (scenario === 'processes') {
        processes = await runProcessesScenario(ctx, counts, db.description);
        process.stdout.write(`\n${processesLines(processes).join('\n')}\n\n`);
        written.push(...(await writeProcesses(processes)));
      } else {
        const result: ScenarioResult =
          scenario === 'clicks' ? await runClicksScenario(ctx, variants, db.description) : await runPostbacksScenario(ctx, variants, db.description);
        printSummary(result);
        results.push(result);
        written.push(...(await writeScenario(result)));
      }
      written.push(await writeIndexHtml());
    }
    const summary = summarizeGoals(options, results, processes, counts);
    const whole = !interrupted && SCENARIOS.every((s) => scenarios.includes(s));
    if (whole) {
      written.push(...(await writeGoals(summary)));
      written.push(await writeIndexHtml());
    }
    printGoals(summary, whole);
  } finally {
    phase('stopping PostgreSQL' + (redis ? ' and redis-server' : ''));
    await db.stop().catch((err) => note(`could not stop PostgreSQL: ${String(err)}`));
    await redis?.stop();
  }
  for (const file of new Set(written)) note(`wrote ${path.relative(REPO_ROOT, file)}`);
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
