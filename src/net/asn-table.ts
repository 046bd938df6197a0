import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ipaddr from 'ipaddr.js';
import type { IpAddress } from './cidr.js';

/**
 * Which autonomous system announces an address, from the bundled @ip-location-db/asn tables
 * (RouteViews, the RIRs' delegations via the NRO, DB-IP's IP to ASN Lite; all CC BY 4.0, attribution
 * required: see src/fraud/README.md). Nothing is downloaded at run time.
 *
 * The two CSVs hold ~515,000 ranges; as row objects they would cost hundreds of megabytes, so they are
 * read into sorted typed arrays (IPv4 bounds as uint32, IPv6 bounds as four uint32 words, most
 * significant first) searched by bisection, and each AS's organisation is kept once (the tables name
 * one organisation per AS). The parser walks the bytes itself: a general CSV parser spent several
 * times longer on these files (measured in src/fraud/README.md), and the format is fixed:
 * `start,end,asn,org` with decimal bounds and the org quoted (with "" escapes) when it holds a comma.
 */

export type AsnHit = { asn: number; org: string; range: string };

export type AsnSummary = { asn: number; org: string; v4Ranges: number; v4Addresses: number; v6Ranges: number; v6Slash48s: number };

export class AsnTable {
  constructor(
    private readonly v4: { start: Uint32Array; end: Uint32Array; asn: Uint32Array },
    /** Four words per bound, most significant first. */
    private readonly v6: { start: Uint32Array; end: Uint32Array; asn: Uint32Array },
    private readonly orgs: ReadonlyMap<number, string>,
    /** Where the data came from, e.g. "@ip-location-db/asn 2.3.2026061719". */
    readonly version: string,
  ) {}

  get size(): { v4: number; v6: number; asns: number } {
    return { v4: this.v4.asn.length, v6: this.v6.asn.length, asns: this.orgs.size };
  }

  org(asn: number): string | undefined {
    return this.orgs.get(asn);
  }

  /**
   * The AS announcing the address. `wanted` is asked before the hit is built, so a caller that only
   * cares about some ASes (the hosting ones) does not pay for formatting the range of every other.
   */
  lookup(addr: IpAddress, wanted?: (asn: number) => boolean): AsnHit | undefined {
    if (addr.kind() === 'ipv4') {
      const o = (addr as ipaddr.IPv4).octets as number[];
      const ip = (((o[0] as number) << 24) | ((o[1] as number) << 16) | ((o[2] as number) << 8) | (o[3] as number)) >>> 0;
      const { start, end, asn } = this.v4;
      let lo = 0;
      let hi = asn.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if ((start[mid] as number) <= ip) lo = mid + 1;
        else hi = mid - 1;
      }
      // hi is now the last range starting at or below the address.
      if (hi < 0 || ip > (end[hi] as number)) return undefined;
      const as = asn[hi] as number;
      if (wanted && !wanted(as)) return undefined;
      return this.hit(as, `${v4Text(start[hi] as number)}-${v4Text(end[hi] as number)}`);
    }
    const p = (addr as ipaddr.IPv6).parts as number[];
    const w0 = ((p[0] as number) * 65536 + (p[1] as number)) >>> 0;
    const w1 = ((p[2] as number) * 65536 + (p[3] as number)) >>> 0;
    const w2 = ((p[4] as number) * 65536 + (p[5] as number)) >>> 0;
    const w3 = ((p[6] as number) * 65536 + (p[7] as number)) >>> 0;
    const { start, end, asn } = this.v6;
    let lo = 0;
    let hi = asn.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (compareWords(start, mid, w0, w1, w2, w3) <= 0) lo = mid + 1;
      else hi = mid - 1;
    }
    if (hi < 0 || compareWords(end, hi, w0, w1, w2, w3) < 0) return undefined;
    const as = asn[hi] as number;
    if (wanted && !wanted(as)) return undefined;
    return this.hit(as, `${v6Text(start, hi)}-${v6Text(end, hi)}`);
  }

  /** Per AS: how many ranges and how much address space it announces (for the data scripts). */
  summarise(): Map<number, AsnSummary> {
    const out = new Map<number, AsnSummary>();
    const entry = (asn: number) => {
      const known = out.get(asn);
      if (known) return known;
      const created = { asn, org: this.orgs.get(asn) ?? '', v4Ranges: 0, v4Addresses: 0, v6Ranges: 0, v6Slash48s: 0 };
      out.set(asn, created);
      return created;
    };
    this.v4.asn.forEach((asn, i) => {
      const s = entry(asn);
      s.v4Ranges++;
      s.v4Addresses += (this.v4.end[i] as number) - (this.v4.start[i] as number) + 1;
    });
    this.v6.asn.forEach((asn, i) => {
      const s = entry(asn);
      s.v6Ranges++;
      // The leading 48 bits are words 0 and the top half of word 1; the span in /48s fits a double.
      const top = (b: Uint32Array) => (b[4 * i] as number) * 65536 + Math.floor((b[4 * i + 1] as number) / 65536);
      s.v6Slash48s += top(this.v6.end) - top(this.v6.start) + 1;
    });
    return out;
  }

  private hit(asn: number, range: string): AsnHit {
    return { asn, org: this.orgs.get(asn) ?? `AS${asn}`, range };
  }
}

/** The sign of the bound in row `row` minus the address given as four words. */
function compareWords(bounds: Uint32Array, row: number, w0: number, w1: number, w2: number, w3: number): number {
  const k = 4 * row;
  return (bounds[k] as number) - w0 || (bounds[k + 1] as number) - w1 || (bounds[k + 2] as number) - w2 || (bounds[k + 3] as number) - w3;
}

const v4Text = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

function v6Text(bounds: Uint32Array, row: number): string {
  const parts: number[] = [];
  for (let w = 0; w < 4; w++) {
    const word = bounds[4 * row + w] as number;
    parts.push(word >>> 16, word & 0xffff);
  }
  return new ipaddr.IPv6(parts).toString();
}

const COMMA = 44;
const NEWLINE = 10;
const QUOTE = 34;
const ZERO = 48;
const CR = 13;

/**
 * Reads one table. `words` is 1 for IPv4 (bounds fit a double exactly) or 4 for IPv6 (each bound is
 * accumulated into four 32-bit words, four decimal digits at a time so no product leaves the range a
 * double holds exactly). `orgs` collects each AS's organisation once across both tables, so the
 * organisation field of a known AS is skipped, not decoded: line ends are found with Buffer's native
 * search, and only the numbers are read byte by byte.
 */
function parseTable(buf: Buffer, words: 1 | 4, orgs: Map<number, string>, what: string) {
  let rows = 0;
  for (let at = buf.indexOf(NEWLINE); at !== -1; at = buf.indexOf(NEWLINE, at + 1)) rows++;
  if (buf.length > 0 && buf[buf.length - 1] !== NEWLINE) rows++;
  const start = new Uint32Array(rows * words);
  const end = new Uint32Array(rows * words);
  const asn = new Uint32Array(rows);
  const limbs = [0, 0, 0, 0];
  let pos = 0;
  let row = 0;

  const fail = (message: string): never => {
    throw new Error(`${what}, row ${row + 1}: ${message}`);
  };
  const readNumber = (): number => {
    let n = 0;
    const from = pos;
    for (let c = buf[pos] as number; c >= ZERO && c <= ZERO + 9; c = buf[++pos] as number) n = n * 10 + (c - ZERO);
    if (pos === from || n > 0xffffffff) fail('a bound or AS number is not a 32-bit decimal');
    return n;
  };
  const readV6 = (into: Uint32Array): void => {
    limbs[0] = limbs[1] = limbs[2] = limbs[3] = 0;
    const from = pos;
    for (;;) {
      let chunk = 0;
      let scale = 1;
      for (let c = buf[pos] as number; scale < 10_000 && c >= ZERO && c <= ZERO + 9; c = buf[++pos] as number) {
        chunk = chunk * 10 + (c - ZERO);
        scale *= 10;
      }
      if (scale === 1) break;
      let carry = chunk;
      for (let k = 3; k >= 0; k--) {
        const v = (limbs[k] as number) * scale + carry;
        const low = v >>> 0;
        limbs[k] = low;
        carry = (v - low) / 4294967296;
      }
      if (carry !== 0) fail('a bound exceeds 128 bits');
    }
    if (pos === from) fail('a bound is not decimal');
    into.set(limbs, 4 * row);
  };
  const comma = (): void => {
    if (buf[pos] !== COMMA) fail('expected ","');
    pos++;
  };

  while (pos < buf.length) {
    let eol = buf.indexOf(NEWLINE, pos);
    if (eol === -1) eol = buf.length;
    if (words === 1) {
      start[row] = readNumber();
      comma();
      end[row] = readNumber();
    } else {
      readV6(start);
      comma();
      readV6(end);
    }
    comma();
    const as = readNumber();
    asn[row] = as;
    comma();
    if (!orgs.has(as)) orgs.set(as, organisation(buf, pos, buf[eol - 1] === CR ? eol - 1 : eol) ?? fail('bad quoting in the organisation'));
    pos = eol + 1;
    row++;
  }
  // Bisection needs ascending starts; a table out of order would answer wrongly without failing.
  for (let r = 1; r < row; r++) {
    const k = words * r;
    let d = 0;
    for (let w = 0; w < words && d === 0; w++) d = (start[k + w] as number) - (start[k - words + w] as number);
    if (d <= 0) throw new Error(`${what}, row ${r + 1}: ranges are not in ascending order`);
  }
  return { start, end, asn };
}

/** The last field of a line, unquoted when it is quoted; undefined when its quoting is broken. */
function organisation(buf: Buffer, from: number, to: number): string | undefined {
  if (buf[from] !== QUOTE) return buf.toString('utf8', from, to);
  if (to - from < 2 || buf[to - 1] !== QUOTE) return undefined;
  const inner = buf.toString('utf8', from + 1, to - 1);
  if (inner.replaceAll('""', '').includes('"')) return undefined;
  return inner.replaceAll('""', '"');
}

/** A table from CSV text in the package's `-num` format (tests build small ones this way). */
export function parseAsnTables(v4Csv: Buffer | string, v6Csv: Buffer | string, version: string): AsnTable {
  const bytes = (b: Buffer | string) => (typeof b === 'string' ? Buffer.from(b, 'utf8') : b);
  const orgs = new Map<number, string>();
  const v4 = parseTable(bytes(v4Csv), 1, orgs, 'IPv4 AS table');
  const v6 = parseTable(bytes(v6Csv), 4, orgs, 'IPv6 AS table');
  return new AsnTable(v4, v6, orgs, version);
}

const require = createRequire(import.meta.url);

/** The installed package's directory (its package.json is the one file whose name is fixed). */
function asnPackageDir(): string {
  return dirname(require.resolve('@ip-location-db/asn/package.json'));
}

let bundled: AsnTable | undefined;

/** The installed package's tables, read on first use and shared by every engine in the process. */
export function bundledAsnTable(): AsnTable {
  if (!bundled) {
    const dir = asnPackageDir();
    const { version } = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string };
    bundled = parseAsnTables(readFileSync(join(dir, 'asn-ipv4-num.csv')), readFileSync(join(dir, 'asn-ipv6-num.csv')), `@ip-location-db/asn ${version}`);
  }
  return bundled;
}
