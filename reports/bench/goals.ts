import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { PgCost } from './pg-cost.js';
import { pgCostHtml, pgCostLines } from './pg-cost-report.js';
import { fmtInt } from './progress.js';
import { machineInfo, RESULTS_DIR, type Machine, type ScenarioResult, type TargetRun } from './results.js';
import type { ProcessesResult } from './scenario-processes.js';
import type { BenchOptions } from './targets.js';

/**
 * Issue 15's goals, each judged within one `npm run bench` against the floors measured in the same
 * run (floor-server.ts: the contract's HMACs and nothing else), gathered from the scenarios into
 * one summary: printed at the end, and for a whole run (every scenario) written to
 * `results/goals.{json,md}` and drawn first in index.html.
 */

export const CLICK_FLOOR_GOAL = 0.8;
export const DUPLICATE_FLOOR_GOAL = 0.8;
export const DISTINCT_FLOOR_GOAL = 0.3;
export const PG_CPU_GOAL_US = 80;

/** `pass` null: not measured in this run. */
export type GoalLine = { goal: string; actual: string; pass: boolean | null };

export type GoalsSummary = {
  kind: 'goals';
  date: string;
  machine: Machine;
  options: BenchOptions;
  floors: { clickRps?: number; postbackRps?: number };
  goals: GoalLine[];
  pgCost?: { variant: string; cost: PgCost };
  processes?: { processes: number; durablePerS: number; engineUs?: number; postgresUs?: number; redisUs?: number; checksOk: boolean }[];
};

const NOT_MEASURED = 'not measured in this run';

function floorGoal(goal: string, run: TargetRun | undefined, floorRps: number | undefined): GoalLine {
  const g = run?.goals.find((x) => x.comparison === '>=');
  if (!run || !g || !floorRps) return { goal, actual: NOT_MEASURED, pass: null };
  return { goal, actual: `${g.actual.toFixed(2)}× (${fmtInt(run.measurement.rps)} req/s; floor ${fmtInt(floorRps)} req/s)`, pass: g.pass };
}

export function summarizeGoals(options: BenchOptions, results: ScenarioResult[], processes: ProcessesResult | undefined, counts: number[]): GoalsSummary {
  const clicks = results.find((r) => r.scenario === 'clicks');
  const postbacks = results.find((r) => r.scenario === 'postbacks');
  const floorOf = (r: ScenarioResult | undefined) => r?.runs.find((run) => run.variant === 'floor')?.measurement.rps;
  const floors = { clickRps: floorOf(clicks), postbackRps: floorOf(postbacks) };
  const goals: GoalLine[] = [];
  const variants = [...new Set([...(clicks?.runs ?? []), ...(postbacks?.runs ?? [])].map((r) => r.variant).filter((v) => v !== 'floor'))];
  for (const variant of variants.length > 0 ? variants : ['memory']) {
    const run = (r: ScenarioResult | undefined, name: string) => r?.runs.find((x) => x.variant === variant && x.name.startsWith(name));
    goals.push(
      floorGoal(`click redirect ≥ ${CLICK_FLOOR_GOAL}× the click floor (${variant})`, run(clicks, 'click redirect'), floors.clickRps),
      floorGoal(`duplicate postback ≥ ${DUPLICATE_FLOOR_GOAL}× the postback floor (${variant})`, run(postbacks, 'postback, duplicates'), floors.postbackRps),
      floorGoal(`distinct durable postback ≥ ${DISTINCT_FLOOR_GOAL}× the postback floor (${variant})`, run(postbacks, 'postback, distinct'), floors.postbackRps),
    );
    const cost = run(postbacks, 'postback, distinct')?.pgCost;
    const cpu = cost?.processCpuUs;
    goals.push({
      goal: `PostgreSQL CPU ≤ ${PG_CPU_GOAL_US} µs per durable conversion (${variant})`,
      actual:
        cost === undefined
          ? NOT_MEASURED
          : `${cpu === undefined ? 'process CPU n/a (remote server)' : `${cpu.toFixed(1)} µs process CPU`}; statements' execution ${cost.statementExecUs === undefined ? 'n/a' : `${cost.statementExecUs.toFixed(1)} µs`}; ${cost.indexEntriesTotal} index entries, ${fmtInt(cost.walBytes)} WAL bytes`,
      pass: cpu === undefined ? null : cpu <= PG_CPU_GOAL_US,
    });
  }
  const measuredCounts = processes?.runs.map((r) => r.processes) ?? [];
  const everyCount = counts.every((n) => measuredCounts.includes(n));
  goals.push({
    goal: `${counts.join(', ')} engine processes on one box sharing PostgreSQL and Redis: throughput and cost reported, every contract check holding`,
    actual:
      !processes || processes.note
        ? (processes?.note ?? NOT_MEASURED)
        : `${measuredCounts.join(', ')} measured; ${processes.runs.flatMap((r) => r.checks).filter((c) => !c.pass).length} contract check(s) failed`,
    pass: !processes || processes.note ? null : everyCount && processes.runs.every((r) => r.checks.every((c) => c.pass)),
  });
  const memoryCost = postbacks?.runs.find((r) => r.variant === 'memory' && r.pgCost)?.pgCost;
  return {
    kind: 'goals',
    date: new Date().toISOString(),
    machine: machineInfo(),
    options,
    floors,
    goals,
    ...(memoryCost ? { pgCost: { variant: 'memory', cost: memoryCost } } : {}),
    ...(processes && !processes.note
      ? {
          processes: processes.runs.map((r) => ({
            processes: r.processes,
            durablePerS: Math.round(r.distinct.rps),
            ...(r.perDistinct.engineUs === undefined ? {} : { engineUs: r.perDistinct.engineUs }),
            ...(r.perDistinct.postgresUs === undefined ? {} : { postgresUs: r.perDistinct.postgresUs }),
            ...(r.perDistinct.redisUs === undefined ? {} : { redisUs: r.perDistinct.redisUs }),
            checksOk: r.checks.every((c) => c.pass),
          })),
        }
      : {}),
  };
}

const verdict = (pass: boolean | null) => (pass === null ? '----' : pass ? 'PASS' : 'FAIL');

const floorsText = (s: GoalsSummary) =>
  `floors measured in this run: click ${s.floors.clickRps ? `${fmtInt(s.floors.clickRps)} req/s` : NOT_MEASURED}, postback ${s.floors.postbackRps ? `${fmtInt(s.floors.postbackRps)} req/s` : NOT_MEASURED}`;

function summaryLines(s: GoalsSummary, format: 'text' | 'markdown'): string[] {
  const floors = floorsText(s);
  const lines = format === 'markdown' ? [floors, '', '| goal | actual | result |', '|---|---|---|'] : [`  ${floors}`];
  for (const g of s.goals) lines.push(format === 'markdown' ? `| ${g.goal} | ${g.actual} | ${verdict(g.pass)} |` : `  ${verdict(g.pass)}  ${g.goal}: ${g.actual}`);
  if (s.pgCost) {
    lines.push(format === 'markdown' ? '' : '', `${format === 'markdown' ? '## ' : '  '}Write amplification and PostgreSQL cost per durable conversion (${s.pgCost.variant})`);
    if (format === 'markdown') lines.push('');
    lines.push(...pgCostLines(s.pgCost.cost, format).map((l) => (format === 'markdown' ? l : `    ${l}`)));
  }
  if (s.processes) {
    lines.push('', `${format === 'markdown' ? '## ' : '  '}Engine processes per box (CPU µs per durable postback)`);
    if (format === 'markdown') lines.push('');
    for (const p of s.processes) {
      lines.push(`${format === 'markdown' ? '-' : '   '} ${p.processes}: ${fmtInt(p.durablePerS)} durable/s; engine ${p.engineUs ?? 'n/a'}, PostgreSQL ${p.postgresUs ?? 'n/a'}, Redis ${p.redisUs ?? 'n/a'} µs; checks ${p.checksOk ? 'ok' : 'MISMATCH'}`);
    }
  }
  return lines;
}

export function printGoals(s: GoalsSummary, written: boolean): void {
  const out = (line: string) => process.stdout.write(line + '\n');
  out('');
  out(`== issue 15 goals, from this run (${s.machine.cpu}, ${s.machine.cores} cores, ${s.options.connections} connections, ${s.options.durationS} s per run)`);
  for (const l of summaryLines(s, 'text')) out(l);
  if (!written) out('  (not written to results/goals.*: only a run of every scenario replaces them)');
  out('');
}

export async function writeGoals(s: GoalsSummary): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const json = path.join(RESULTS_DIR, 'goals.json');
  const md = path.join(RESULTS_DIR, 'goals.md');
  await writeFile(json, JSON.stringify(s, null, 2) + '\n');
  const head = [`# Issue 15 goals, one run`, '', `${s.date}. ${s.machine.cpu}, ${s.machine.cores} cores, Node ${s.machine.node}; ${s.options.connections} connections, ${s.options.durationS} s per run.`, ''];
  await writeFile(md, [...head, ...summaryLines(s, 'markdown'), '', 'Regenerate with `npm run bench`; raw figures in `goals.json` and the scenario files beside it.', ''].join('\n'));
  return [json, md];
}

export function isGoalsSummary(x: unknown): x is GoalsSummary {
  return typeof x === 'object' && x !== null && (x as Partial<GoalsSummary>).kind === 'goals' && Array.isArray((x as Partial<GoalsSummary>).goals);
}

const esc = (t: string) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function goalsSection(s: GoalsSummary): string {
  const rows = s.goals.map((g) => `<tr><td>${esc(g.goal)}</td><td>${esc(g.actual)}</td><td class="${g.pass === null ? '' : g.pass ? 'pass' : 'fail'}">${verdict(g.pass)}</td></tr>`).join('');
  const floors = floorsText(s);
  return (
    `<section><h2>Issue 15 goals, one run</h2><p class="meta">${esc(s.date)} · ${esc(s.machine.cpu)}, ${s.machine.cores} cores · ${esc(floors)}</p>` +
    `<table><thead><tr><th>goal</th><th>actual</th><th>result</th></tr></thead><tbody>${rows}</tbody></table>` +
    (s.pgCost ? pgCostHtml(`PostgreSQL per durable conversion (${s.pgCost.variant})`, s.pgCost.cost) : '') +
    '</section>'
  );
}
