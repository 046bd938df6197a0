import { mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { ProfileSummary } from './cpu-profile.js';
import type { TableIndexUsage } from './index-usage.js';
import type { Measurement } from './load.js';
import type { PgCost } from './pg-cost.js';
import { pgCostLines } from './pg-cost-report.js';
import { REPO_ROOT } from './processes.js';
import { fmtInt, fmtMs } from './progress.js';
import type { BenchOptions, Variant } from './targets.js';

/**
 * Figures as files: `results/<scenario>.json` (raw, machine-readable, with the machine that
 * produced them) and `results/<scenario>.md` (the same, for people); index.html is drawn from the JSON.
 */

export const RESULTS_DIR = path.join(REPO_ROOT, 'reports', 'bench', 'results');

export type Machine = { cpu: string; cores: number; memoryGiB: number; platform: string; node: string };

/** `reference`: the run a ratio goal is relative to (a floor), so a chart can mark the goal in req/s. */
export type Goal = { description: string; threshold: number; comparison: '>=' | '<='; actual: number; pass: boolean; reference?: { name: string; rps: number } };

export type Check = { description: string; expected: string; actual: string; pass: boolean };

export type TargetRun = {
  name: string;
  /** `floor`: floor-server.ts, the contract's cryptography and nothing else, for scale (no goals). */
  variant: Variant | 'floor';
  workload: string;
  measurement: Measurement;
  /** Served req/s of this run over the baseline's, both from this invocation. */
  ratio: number;
  goals: Goal[];
  /** Counts that explain the run (decisions, click reuse...). */
  details?: Record<string, number | string>;
  /** What the run's durable conversions cost PostgreSQL (distinct postbacks). */
  pgCost?: PgCost;
};

export type ScenarioResult = {
  scenario: 'clicks' | 'postbacks';
  status: 'ok' | 'unavailable' | 'failed';
  note?: string;
  date: string;
  machine: Machine;
  options: BenchOptions;
  database: string;
  /** hello-world measured before the engine runs. */
  baseline: Measurement;
  /** hello-world measured again after them. */
  baselineAfter: Measurement;
  /** Mean served req/s of the two baselines: the denominator of every ratio. */
  baselineRps: number;
  runs: TargetRun[];
  checks: Check[];
  profiles: ProfileSummary[];
  /** Scans of every index after the scenario (postbacks), from index-usage.ts. */
  indexUsage?: TableIndexUsage[];
};

export function machineInfo(): Machine {
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.cpus().length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    node: process.version,
  };
}

export function ratioGoal(description: string, ratio: number, threshold: number, reference?: Goal['reference']): Goal {
  return { description, threshold, comparison: '>=', actual: round(ratio, 3), pass: ratio >= threshold, ...(reference ? { reference } : {}) };
}

export function atMostGoal(description: string, actual: number, threshold: number): Goal {
  return { description, threshold, comparison: '<=', actual: round(actual, 1), pass: actual <= threshold };
}

export function check(description: string, expected: string | number, actual: string | number, pass: boolean): Check {
  return { description, expected: String(expected), actual: String(actual), pass };
}

const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

/** Baselines this far apart mean the machine's load changed during the scenario. */
export const BASELINE_DRIFT_LIMIT = 0.15;

/** CPU used by processes outside the bench (in cores) above which a run is flagged as disturbed. */
export const OTHER_CORES_LIMIT = 0.25;

export function quietMachineCheck(measurements: Measurement[]): Check[] {
  const split = measurements.filter((m) => m.cpu !== undefined);
  if (split.length === 0) return [];
  const worst = split.reduce((a, b) => ((b.cpu?.otherCores ?? 0) > (a.cpu?.otherCores ?? 0) ? b : a));
  const other = worst.cpu?.otherCores ?? 0;
  return [
    check(
      `other processes on the machine during measured runs (≤ ${OTHER_CORES_LIMIT} cores, else the figures are disturbed: rerun)`,
      `≤ ${OTHER_CORES_LIMIT}`,
      `${other} cores (worst: ${worst.label.replace(/^measure /, '')})`,
      other <= OTHER_CORES_LIMIT,
    ),
  ];
}

export function baselineOf(before: Measurement, after: Measurement): { baselineRps: number; drift: Check } {
  const baselineRps = (before.rps + after.rps) / 2;
  const drift = baselineRps > 0 ? Math.abs(after.rps - before.rps) / baselineRps : 0;
  return {
    baselineRps,
    drift: check(
      `hello-world drift between before and after (≤ ${BASELINE_DRIFT_LIMIT * 100}%, else the machine was busy: rerun)`,
      `≤ ${BASELINE_DRIFT_LIMIT * 100}%`,
      `${(drift * 100).toFixed(1)}% (${Math.round(before.rps)} → ${Math.round(after.rps)} req/s)`,
      drift <= BASELINE_DRIFT_LIMIT,
    ),
  };
}

/** The issues' goals are stated at 10 connections; a run at another concurrency is kept beside it, not over it. */
export const DEFAULT_CONNECTIONS = 10;

function resultStem(r: ScenarioResult): string {
  const { connections } = r.options;
  return connections === DEFAULT_CONNECTIONS ? r.scenario : `${r.scenario}-${connections}-connections`;
}

export async function writeScenario(result: ScenarioResult): Promise<string[]> {
  await mkdir(RESULTS_DIR, { recursive: true });
  const stem = resultStem(result);
  const json = path.join(RESULTS_DIR, `${stem}.json`);
  const md = path.join(RESULTS_DIR, `${stem}.md`);
  await writeFile(json, JSON.stringify(result, null, 2) + '\n');
  await writeFile(md, renderMarkdown(result));
  return [json, md];
}

function row(label: string, m: Measurement, ratio: string): string {
  return `| ${label} | ${fmtInt(m.rps)} | ${fmtMs(m.latencyMs.p50)} | ${fmtMs(m.latencyMs.p99)} | ${fmtMs(m.latencyMs.max)} | ${ratio} | ${cpuText(m)} | ${statusText(m)} |`;
}

export function cpuText(m: Measurement): string {
  const c = m.cpu;
  return c ? `${c.serverCores} / ${c.postgresCores} / ${c.clientCores} / ${c.otherCores}` : 'n/a';
}

function statusText(m: Measurement): string {
  const codes = Object.entries(m.statusCodes).map(([c, n]) => `${c}: ${fmtInt(n)}`).join(', ');
  return m.errors > 0 ? `${codes}; errors: ${m.errors}` : codes;
}

export function renderMarkdown(r: ScenarioResult): string {
  const lines = [
    `# Benchmark: ${r.scenario}`,
    '',
    `${r.date}. ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB, ${r.machine.platform}, Node ${r.machine.node}.`,
    `${r.options.connections} connections, ${r.options.durationS} s per run after a ${r.options.warmupS} s warm-up; each server in its own process; ${r.database}.`,
    '',
  ];
  if (r.note) lines.push(`> ${r.note}`, '');
  lines.push(
    `Ratios are to the mean of the two hello-world runs, ${fmtInt(r.baselineRps)} req/s.`,
    '',
    '| target | req/s | p50 ms | p99 ms | max ms | × baseline | cores: server / postgres / client / other | answers |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
    row('baseline: hello-world, before', r.baseline, (r.baseline.rps / r.baselineRps).toFixed(2)),
    row('baseline: hello-world, after', r.baselineAfter, (r.baselineAfter.rps / r.baselineRps).toFixed(2)),
    ...r.runs.map((run) => row(`${run.name} (${run.variant})`, run.measurement, run.ratio.toFixed(2))),
    '',
  );
  const goals = r.runs.flatMap((run) => run.goals.map((g) => ({ run, g })));
  if (goals.length > 0) {
    lines.push('## Goals', '', '| target | goal | actual | result |', '|---|---|---:|---|');
    for (const { run, g } of goals) lines.push(`| ${run.name} (${run.variant}) | ${g.description} | ${g.actual} | ${g.pass ? 'PASS' : '**FAIL**'} |`);
    lines.push('');
  }
  if (r.checks.length > 0) {
    lines.push('## Checks', '', '| check | expected | actual | result |', '|---|---:|---:|---|');
    for (const c of r.checks) lines.push(`| ${c.description} | ${c.expected} | ${c.actual} | ${c.pass ? 'ok' : '**MISMATCH**'} |`);
    lines.push('');
  }
  const details = r.runs.filter((run) => run.details && Object.keys(run.details).length > 0);
  if (details.length > 0) {
    lines.push('## Details', '');
    for (const run of details) {
      lines.push(`- ${run.name} (${run.variant}): ${Object.entries(run.details ?? {}).map(([k, v]) => `${k} ${typeof v === 'number' && Number.isInteger(v) ? fmtInt(v) : v}`).join(', ')}`);
    }
    lines.push('');
  }
  for (const run of r.runs) {
    if (run.pgCost) lines.push(`## PostgreSQL per durable conversion: ${run.name} (${run.variant})`, '', ...pgCostLines(run.pgCost, 'markdown'), '');
  }
  if (r.indexUsage) lines.push('## Index usage after the scenario', '', ...indexUsageLines(r.indexUsage), '');
  for (const p of r.profiles) {
    lines.push(`## CPU profile: ${p.label}`, '', `${p.file}, ${p.totalMs.toFixed(0)} ms sampled, ${p.idlePct.toFixed(1)}% idle.`, '');
    lines.push('| self % | function | where |', '|---:|---|---|');
    for (const f of p.topFunctions) lines.push(`| ${f.selfPct.toFixed(1)} | \`${f.name}\` | ${f.where} |`);
    lines.push('', '| self % | module |', '|---:|---|');
    for (const m of p.byModule) lines.push(`| ${m.selfPct.toFixed(1)} | ${m.module} |`);
    lines.push('');
  }
  const connections = r.options.connections === DEFAULT_CONNECTIONS ? '' : ` --connections ${r.options.connections}`;
  lines.push('Regenerate with `npm run bench -- --scenario ' + r.scenario + connections + '`; raw figures in `' + resultStem(r) + '.json`.', '');
  return lines.join('\n');
}

export function printSummary(r: ScenarioResult): void {
  const out = (s: string) => process.stdout.write(s + '\n');
  const pad = (s: string, n: number) => s.padEnd(n);
  const num = (s: string, n: number) => s.padStart(n);
  out('');
  out(`== ${r.scenario}: ${r.machine.cpu}, ${r.machine.cores} cores, Node ${r.machine.node}, ${r.options.connections} connections, ${r.options.durationS} s`);
  out(`${pad('target', 44)}${num('req/s', 10)}${num('p50 ms', 9)}${num('p99 ms', 9)}${num('ratio', 8)}`);
  const line = (label: string, m: Measurement, ratio: number) =>
    out(`${pad(label, 44)}${num(fmtInt(m.rps), 10)}${num(fmtMs(m.latencyMs.p50), 9)}${num(fmtMs(m.latencyMs.p99), 9)}${num(ratio.toFixed(2) + '×', 8)}`);
  line('baseline: hello-world, before', r.baseline, r.baseline.rps / r.baselineRps);
  line('baseline: hello-world, after', r.baselineAfter, r.baselineAfter.rps / r.baselineRps);
  for (const run of r.runs) line(`${run.name} (${run.variant})`, run.measurement, run.ratio);
  for (const run of r.runs) {
    for (const g of run.goals) out(`  ${g.pass ? 'PASS' : 'FAIL'}  ${run.name} (${run.variant}): ${g.description} (actual ${g.actual})`);
  }
  for (const c of r.checks) out(`  ${c.pass ? 'ok  ' : 'MISMATCH'}  ${c.description}: expected ${c.expected}, actual ${c.actual}`);
  if (r.note) out(`  note: ${r.note}`);
  for (const run of r.runs) {
    if (!run.pgCost) continue;
    out(`  PostgreSQL per durable conversion, ${run.name} (${run.variant}):`);
    for (const l of pgCostLines(run.pgCost, 'text')) out(`    ${l}`);
  }
  if (r.indexUsage) {
    const all = r.indexUsage.flatMap((t) => t.indexes.map((i) => ({ name: `${t.table}.${i.index}`, ...i })));
    const never = all.filter((i) => i.neverScanned);
    const unjustified = never.filter((i) => i.justification === null).map((i) => i.name);
    out(`  index usage after the scenario (pg_stat_user_indexes): ${all.length - never.length} of ${all.length} indexes scanned; never scanned and justified by no query: ${unjustified.join(', ') || 'none'}`);
    out(`    never scanned, justified by queries this scenario does not make (list in the .md): ${never.length - unjustified.length}`);
  }
  out('');
}

/** Never-scanned indexes first (with the query that justifies each, if any), then a count of the rest. */
export function indexUsageLines(usage: TableIndexUsage[]): string[] {
  const all = usage.flatMap((t) => t.indexes.map((i) => ({ table: t.table, ...i })));
  const never = all.filter((i) => i.neverScanned);
  const lines = never.map((i) => `- never scanned: ${i.table}.${i.index} (${fmtInt(i.sizeBytes / 1024)} KiB; ${i.justification ? `justified by: ${i.justification}` : 'no query in src/db/index-justifications.ts names it'})`);
  lines.push(`- ${all.length - never.length} of ${all.length} indexes scanned during the scenario`);
  return lines;
}
