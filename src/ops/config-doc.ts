import { ENV_DOCS, type EnvDoc } from '../config.js';

/**
 * The configuration documented once, in ENV_DOCS beside the schema, and rendered twice: the README's
 * table (a test holds the README to it) and `--help`.
 */

const defaultCell = (doc: EnvDoc) => ('default' in doc ? `\`${doc.default}\`` : `unset: ${doc.unset}`);
const cell = (text: string) => text.replace(/\|/g, '\\|');

export function renderEnvTable(): string {
  const rows = Object.entries(ENV_DOCS).map(([name, doc]) => `| \`${name}\` | ${cell(doc.meaning)} | ${cell(defaultCell(doc))} |`);
  return ['| variable | meaning | default |', '|---|---|---|', ...rows].join('\n');
}

export const ENV_TABLE_BEGIN = '<!-- config-table:begin (generated from ENV_DOCS in src/config.ts; test/ops-docs.test.ts checks it) -->';
export const ENV_TABLE_END = '<!-- config-table:end -->';

const plain = (text: string) => text.replace(/`/g, '');

export function renderEnvHelp(): string {
  const names = Object.keys(ENV_DOCS);
  const width = Math.max(...names.map((n) => n.length));
  const lines = Object.entries(ENV_DOCS).map(([name, doc]) => {
    const fallback = 'default' in doc ? `default ${doc.default}` : `unset: ${plain(doc.unset)}`;
    return `  ${name.padEnd(width)}  ${plain(doc.meaning)}\n  ${' '.repeat(width)}  (${fallback})`;
  });
  return [
    'postback-engine: fraud-resistant postback validation and reconciliation engine',
    '',
    'Usage: npm start [-- --help]',
    '',
    'Configured only by environment variables, parsed once at start-up; a bad value stops the engine',
    'with a message naming the variable (exit code 2).',
    '',
    'Environment variables:',
    ...lines,
    '',
  ].join('\n');
}
