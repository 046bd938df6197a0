import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startTestEngine, type TestEngine } from './helpers/engine.js';

/**
 * The alert rules (src/ops/alerts.yml) are valid Prometheus rules, fire and stay quiet as their unit
 * tests say (src/ops/alerts.test.yml), and query only metrics the engine really exposes.
 */

const RULES = 'src/ops/alerts.yml';
const RULE_TESTS = 'src/ops/alerts.test.yml';
const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
if (!hasPromtool) {
  const message = 'promtool not found: the alert-rule tests are skipped. Install it with `apt-get install -y prometheus` (Debian).';
  if (process.env.CI) throw new Error(`${message} CI must not skip them.`);
  console.warn(message);
}

function promtool(...args: string[]) {
  const run = spawnSync('promtool', args, { encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

type Rule = { alert?: string; expr: string };
const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

describe.skipIf(!hasPromtool)('alert rules with promtool', () => {
  it('pass `promtool check rules`', () => {
    const run = promtool('check', 'rules', RULES);
    expect(run.status, run.output).toBe(0);
    expect(run.output).toContain(`SUCCESS: ${rules.length} rules found`);
  });

  it('pass their unit tests (`promtool test rules`), which cover at least five alerts firing and staying quiet', () => {
    const run = promtool('test', 'rules', RULE_TESTS);
    expect(run.status, run.output).toBe(0);
    const tested = new Set([...readFileSync(RULE_TESTS, 'utf8').matchAll(/alertname: (\w+)/g)].map((m) => m[1]));
    expect(tested.size).toBeGreaterThanOrEqual(5);
  });
});

describe('alert rules against the engine', () => {
  let t: TestEngine;
  beforeAll(async () => {
    t = await startTestEngine();
  });
  afterAll(async () => {
    await t?.close();
  });

  it('name the alerts the runbook expects, and query only metrics the engine registers', () => {
    expect(rules.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'PostbackEnginePublisherEndpointDisabled',
        'PostbackEngineDeliveryBacklogOld',
        'PostbackEnginePostbackRefusalSpike',
        'PostbackEngineFlagRateSpike',
        'PostbackEngineReconcilerNotRun',
      ]),
    );
    const registered = new Set(t.engine.metrics.registry.getMetricsAsArray().map((m) => m.name));
    for (const rule of rules) {
      const used = [...rule.expr.matchAll(/\b(postback_engine_[a-z0-9_]+)/g)].map((m) => m[1] as string);
      expect(used.length, rule.alert).toBeGreaterThan(0);
      for (const name of used) expect(registered.has(name), `${rule.alert} uses ${name}`).toBe(true);
    }
  });
});
