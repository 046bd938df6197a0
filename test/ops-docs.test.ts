import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ENV_DOCS, loadConfig } from '../src/config.js';
import { METRIC_PREFIX } from '../src/metrics.js';
import { ENV_TABLE_BEGIN, ENV_TABLE_END, renderEnvTable } from '../src/ops/config-doc.js';
import { defaultMetricNames, engineMetricDocs, METRICS_TABLE_BEGIN, METRICS_TABLE_END, renderMetricsTable } from '../src/ops/metrics-doc.js';
import { startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * The README's configuration and metric tables are generated from the schema and the registry; these
 * tests fail when either drifts. `UPDATE_DOCS=1 npx vitest run test/ops-docs.test.ts` rewrites them.
 */

const README = new URL('../README.md', import.meta.url);

function readmeBlock(begin: string, end: string, expected: string): string {
  const text = readFileSync(README, 'utf8');
  const from = text.indexOf(begin);
  const to = text.indexOf(end);
  if (from < 0 || to < from) throw new Error(`README.md lacks the markers ${begin} … ${end}`);
  const current = text.slice(from + begin.length, to).trim();
  if (process.env.UPDATE_DOCS === '1' && current !== expected) {
    writeFileSync(README, `${text.slice(0, from + begin.length)}\n${expected}\n${text.slice(to)}`);
    return expected;
  }
  return current;
}

/** `| \`NAME\` | ... | default |` rows of a markdown table: first cell's code span → last cell. */
function tableRows(block: string): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of block.split('\n')) {
    const cells = line.split(/(?<!\\)\|/).slice(1, -1).map((c) => c.trim());
    const name = /^`([^`]+)`$/.exec(cells[0] ?? '')?.[1];
    if (name) rows.set(name, cells[cells.length - 1] ?? '');
  }
  return rows;
}

describe('README configuration table', () => {
  it('lists every schema variable once with its documented default, and nothing else', () => {
    const rows = tableRows(readmeBlock(ENV_TABLE_BEGIN, ENV_TABLE_END, renderEnvTable()));
    expect([...rows.keys()].sort()).toEqual(Object.keys(ENV_DOCS).sort());
    for (const [name, doc] of Object.entries(ENV_DOCS)) {
      expect(rows.get(name), name).toBe('default' in doc ? `\`${doc.default}\`` : `unset: ${doc.unset}`);
    }
    expect(readmeBlock(ENV_TABLE_BEGIN, ENV_TABLE_END, renderEnvTable())).toBe(renderEnvTable());
  });

  it('documents the defaults the parser really applies: setting each documented default changes nothing', () => {
    const unset = loadConfig({});
    const literal = Object.entries(ENV_DOCS).filter(([, doc]) => 'default' in doc);
    expect(literal.length).toBeGreaterThan(20);
    for (const [name, doc] of literal) {
      if (!('default' in doc)) continue;
      expect(loadConfig({ [name]: doc.default }), `${name}=${doc.default}`).toEqual(unset);
    }
    // And a value other than the default does reach the config, so the comparison above can fail.
    expect(loadConfig({ SHUTDOWN_DELAY_S: '7' }).shutdownDelayS).toBe(7);
  });

  it('refuses METRICS_PORT equal to PORT and a short METRICS_TOKEN, naming the variable', () => {
    expect(() => loadConfig({ PORT: '9000', METRICS_PORT: '9000' })).toThrow(/METRICS_PORT must differ from PORT/);
    expect(() => loadConfig({ METRICS_TOKEN: 'short' })).toThrow(/METRICS_TOKEN: must be at least 16 characters/);
    expect(() => loadConfig({ ACCESS_LOG: 'sometimes' })).toThrow(/ACCESS_LOG/);
    expect(loadConfig({ HOST: '10.0.0.5' }).metricsHost).toBe('10.0.0.5');
  });
});

describe('--help', () => {
  it('prints every variable with its meaning and default and exits 0 without starting anything', { timeout: 30_000 }, () => {
    const scratch = mkdtempSync(join(tmpdir(), 'help-'));
    try {
      const dataDir = join(scratch, 'data');
      // A port in use would not matter either: nothing listens.
      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts', '--help'], {
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', DATA_DIR: dataDir, PORT: 'not-a-port' },
        encoding: 'utf8',
        timeout: 25_000,
      });
      expect(run.status, run.stderr).toBe(0);
      for (const [name, doc] of Object.entries(ENV_DOCS)) {
        expect(run.stdout).toContain(name);
        expect(run.stdout).toContain('default' in doc ? `(default ${doc.default})` : `(unset: ${doc.unset.replace(/`/g, '')})`);
      }
      expect(run.stdout).not.toMatch(/listening|embedded PostgreSQL started|Generated admin token/);
      expect(existsSync(dataDir)).toBe(false);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

describe('README metric table and metric names', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startTestEngine();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('every metric the engine registers is in the README table with its type and labels, and nothing else', () => {
    const docs = engineMetricDocs(t.engine.metrics.registry);
    expect(docs.length).toBeGreaterThan(20);
    const block = readmeBlock(METRICS_TABLE_BEGIN, METRICS_TABLE_END, renderMetricsTable(docs));
    const documented = new Set([...tableRows(block).keys()].filter((name) => name.startsWith(METRIC_PREFIX)));
    expect([...documented].sort()).toEqual(docs.map((d) => d.name).sort());
    expect(block).toBe(renderMetricsTable(docs));
  });

  it('names follow the Prometheus guide: one prefix, _total on counters only, base units, no unit-less durations', () => {
    const defaults = defaultMetricNames();
    for (const m of t.engine.metrics.registry.getMetricsAsArray()) {
      if (defaults.has(m.name)) continue;
      expect(m.name.startsWith(METRIC_PREFIX), m.name).toBe(true);
      expect(m.name).toMatch(/^[a-z][a-z0-9_]*$/);
      expect(m.name.endsWith('_total'), m.name).toBe(String(m.type) === 'counter');
      expect(m.name, 'durations and ages are in seconds').not.toMatch(/_(duration|age|latency|time)(_total)?$|_(ms|milliseconds|minutes|hours)(_|$)/);
      if (/duration|_age_|latency/.test(m.name)) expect(m.name).toMatch(/_seconds(_total)?$/);
      expect(m.name, '"size" is no unit: name what is counted').not.toMatch(/_size$/);
    }
  });
});
