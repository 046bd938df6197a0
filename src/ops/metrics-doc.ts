import { collectDefaultMetrics, Registry } from 'prom-client';

/**
 * The README's metric table, rendered from the registry itself (name, type, labels, help), so a test
 * can require the README to hold exactly what /metrics exposes. prom-client's default process and
 * Node.js metrics are listed as one row: their names are the client library's, not ours.
 */

export type MetricDoc = { name: string; type: string; labels: readonly string[]; help: string };

/** Names prom-client's collectDefaultMetrics registers on this runtime. */
export function defaultMetricNames(): Set<string> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return new Set(registry.getMetricsAsArray().map((m) => m.name));
}

export function engineMetricDocs(registry: Registry): MetricDoc[] {
  const defaults = defaultMetricNames();
  return registry
    .getMetricsAsArray()
    .filter((m) => !defaults.has(m.name))
    .map((m) => ({
      name: m.name,
      type: String(m.type),
      labels: (m as unknown as { labelNames?: readonly string[] }).labelNames ?? [],
      help: m.help,
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function renderMetricsTable(docs: readonly MetricDoc[]): string {
  const rows = docs.map((d) => `| \`${d.name}\` | ${d.type} | ${d.labels.map((l) => `\`${l}\``).join(', ') || '–'} | ${cell(d.help)} |`);
  return [
    '| metric | type | labels | meaning |',
    '|---|---|---|---|',
    ...rows,
    "| `process_*`, `nodejs_*` | various | – | prom-client's default process and Node.js runtime metrics (CPU, memory, event-loop lag, GC) |",
  ].join('\n');
}

export const METRICS_TABLE_BEGIN = '<!-- metrics-table:begin (generated from the registry; test/ops-docs.test.ts checks it) -->';
export const METRICS_TABLE_END = '<!-- metrics-table:end -->';
