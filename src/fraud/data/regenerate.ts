import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { bundledAsnTable, type AsnSummary } from '../../net/asn-table.js';
import { HOSTING_ASNS_FILE, parseHostingAsns, type ClassifiedAsn } from '../hosting-asns.js';

/**
 * Keeps hosting-asns.txt honest against the installed IP-to-AS table (@ip-location-db/asn). Usage,
 * from the repository root, after `npm update @ip-location-db/asn`:
 *
 *   npx tsx src/fraud/data/regenerate.ts            check every listed AS; print what each covers
 *   npx tsx src/fraud/data/regenerate.ts --write    also rewrite the organisation column from the table
 *   npx tsx src/fraud/data/regenerate.ts --suggest  print unlisted ASes whose organisation name says
 *                                                   hosting, to review and append (source "keyword")
 *
 * The check fails (exit 1) when a listed AS no longer announces anything or its organisation changed
 * (a renamed or sold network deserves a look before the rule keeps judging by it).
 */

/** Organisation names that sell servers... */
const HOSTING_WORDS = /\b(hosting|hoster|webhost\w*|vps|vds|dedicated servers?|server hosting|colocation)\b/i;
/** ...unless they also name an access network or an institution, whose users are people. */
const ACCESS_WORDS =
  /telecom|telekom|broadband|cable|wireless|mobile|fib(er|re)|communications|\bisp\b|provedor|internet service|satellite|vsat|hotel|hostel|universit|school|college|bank|insurance|hospital|government|ministry/i;

function main(): void {
  const { values } = parseArgs({ options: { write: { type: 'boolean', default: false }, suggest: { type: 'boolean', default: false } } });
  const text = readFileSync(HOSTING_ASNS_FILE, 'utf8');
  const listed = parseHostingAsns(text);
  const table = bundledAsnTable();
  const coverage = table.summarise();

  if (values.suggest) {
    const known = new Set(listed.entries.map((e) => e.asn));
    const candidates = [...coverage.values()]
      .filter((s) => !known.has(s.asn) && HOSTING_WORDS.test(s.org) && !ACCESS_WORDS.test(s.org))
      .sort((a, b) => b.v4Addresses - a.v4Addresses || b.v6Slash48s - a.v6Slash48s || a.asn - b.asn);
    process.stderr.write(`${candidates.length} candidates from ${table.version}; review before appending\n`);
    for (const s of candidates) process.stdout.write(`${s.asn} hosting keyword ${s.org}\n`);
    return;
  }

  const problems: string[] = [];
  const totals = new Map<string, { asns: number; v4Addresses: number; v6Slash48s: number }>();
  process.stdout.write(`${table.version}: ${table.size.v4} IPv4 and ${table.size.v6} IPv6 ranges of ${table.size.asns} ASes\n`);
  process.stdout.write(`${'asn'.padStart(10)} ${'kind'.padEnd(7)} ${'source'.padEnd(9)} ${'v4 ranges'.padStart(9)} ${'v4 addresses'.padStart(12)} ${'v6 /48s'.padStart(12)}  organisation\n`);
  for (const e of listed.entries) {
    const s = coverage.get(e.asn);
    if (!s) problems.push(`AS${e.asn} (${e.org}) announces nothing in ${table.version}`);
    else if (s.org !== e.org) problems.push(`AS${e.asn} is now "${s.org}" (listed as "${e.org}")`);
    if (s && e.kind !== 'none') {
      const t = totals.get(e.kind) ?? { asns: 0, v4Addresses: 0, v6Slash48s: 0 };
      t.asns++;
      t.v4Addresses += s.v4Addresses;
      t.v6Slash48s += s.v6Slash48s;
      totals.set(e.kind, t);
    }
    process.stdout.write(row(e, s));
  }
  for (const [kind, t] of totals) {
    process.stdout.write(`${kind}: ${t.asns} ASes, ${t.v4Addresses.toLocaleString('en')} IPv4 addresses, ${t.v6Slash48s.toLocaleString('en')} IPv6 /48s\n`);
  }

  if (values.write) {
    const rewritten = text
      .split('\n')
      .map((line) => {
        const m = /^(\d+\s+\S+\s+\S+\s+)(.+)$/.exec(line);
        const org = m ? coverage.get(Number.parseInt(line, 10))?.org : undefined;
        return m && org ? `${m[1]}${org}` : line;
      })
      .join('\n');
    writeFileSync(HOSTING_ASNS_FILE, rewritten);
    process.stdout.write('organisations rewritten from the table\n');
  }
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n`);
    if (!values.write || problems.some((p) => p.includes('announces nothing'))) process.exitCode = 1;
  }
}

function row(e: ClassifiedAsn, s: AsnSummary | undefined): string {
  const n = (v: number | undefined, w: number) => (v === undefined ? '-' : v.toLocaleString('en')).padStart(w);
  return `${String(e.asn).padStart(10)} ${e.kind.padEnd(7)} ${e.source.padEnd(9)} ${n(s?.v4Ranges, 9)} ${n(s?.v4Addresses, 12)} ${n(s?.v6Slash48s, 12)}  ${e.org}\n`;
}

main();
