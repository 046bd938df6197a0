import { readFileSync } from 'node:fs';
import { parseCidr, type IpAddress } from '../net/cidr.js';
import { CidrIndex } from '../net/cidr-index.js';

/**
 * Hosting and cloud address ranges for the datacenter_ip rule, from the bundled data file
 * (data/datacenter-ranges.txt; its header says where it comes from and how to regenerate it). Read
 * once per process; nothing is downloaded at run time.
 *
 * File format: one CIDR per line; `#` starts a comment line; `# provider: <name>` labels the ranges
 * that follow it, so evidence can say whose range matched.
 */

export const DATACENTER_RANGES_FILE = new URL('./data/datacenter-ranges.txt', import.meta.url);

export type DatacenterRanges = {
  size: number;
  /** A one-line summary of the file's provenance, shown in evidence. */
  version: string;
  lookup(addr: IpAddress): { range: string; provider: string } | undefined;
};

export function parseDatacenterRanges(text: string): DatacenterRanges {
  const index = new CidrIndex<string>();
  let provider = 'unknown';
  let version = 'unversioned';
  for (const [n, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const meta = /^#\s*(provider|snapshot):\s*(.+)$/.exec(line);
      if (meta?.[1] === 'provider') provider = (meta[2] as string).trim();
      if (meta?.[1] === 'snapshot') version = (meta[2] as string).trim();
      continue;
    }
    const cidr = parseCidr(line);
    // A bad line is a broken data file; failing at start-up beats silently not matching a range.
    if (!cidr) throw new Error(`datacenter ranges, line ${n + 1}: "${line}" is not a canonical CIDR`);
    index.add(cidr, provider);
  }
  return {
    size: index.size,
    version,
    lookup(addr) {
      const hit = index.find(addr);
      return hit ? { range: hit.cidr.text, provider: hit.label } : undefined;
    },
  };
}

let bundled: DatacenterRanges | undefined;

export function bundledDatacenterRanges(): DatacenterRanges {
  bundled ??= parseDatacenterRanges(readFileSync(DATACENTER_RANGES_FILE, 'utf8'));
  return bundled;
}
