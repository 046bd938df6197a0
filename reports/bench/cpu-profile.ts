import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { REPO_ROOT } from './processes.js';

/**
 * Reads a V8 `.cpuprofile` (from `node --cpu-prof`) and ranks where the engine spent its CPU: by
 * function (self time) and by module (a package under node_modules, a file under src/, or Node).
 * Each sample counts once; "(idle)" is reported apart. A window (monotonic microseconds, the clock
 * both V8's profiler and `process.hrtime` use) keeps only the samples of one measured run, so
 * start-up, seeding and warm-up do not blur the picture.
 */

type CallFrame = { functionName: string; url: string; lineNumber: number };
type ProfileNode = { id: number; callFrame: CallFrame; hitCount?: number };
type CpuProfile = { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[]; timeDeltas?: number[] };

export type ProfileSummary = {
  label: string;
  file: string;
  /** Wall time the summary covers. */
  totalMs: number;
  idlePct: number;
  topFunctions: { name: string; where: string; selfPct: number }[];
  byModule: { module: string; selfPct: number }[];
};

const TOP = 15;

/** The largest profile written in `dir` since `sinceMs` (tsx's loader thread writes a small one too). */
export async function latestProfile(dir: string, sinceMs: number): Promise<string | undefined> {
  const names = (await readdir(dir).catch(() => [] as string[])).filter((n) => n.endsWith('.cpuprofile'));
  let best: { file: string; size: number } | undefined;
  for (const name of names) {
    const file = path.join(dir, name);
    const s = await stat(file);
    if (s.mtimeMs + 1000 < sinceMs) continue;
    if (!best || s.size > best.size) best = { file, size: s.size };
  }
  return best?.file;
}

export type Window = { startUs: number; endUs: number };

/** Samples per node id, only those inside `window` when given. */
function hitsPerNode(profile: CpuProfile, window: Window | undefined): Map<number, number> {
  const hits = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let t = profile.startTime;
  for (let i = 0; i < samples.length; i++) {
    t += deltas[i] ?? 0;
    if (window && (t < window.startUs || t > window.endUs)) continue;
    const id = samples[i] as number;
    hits.set(id, (hits.get(id) ?? 0) + 1);
  }
  return hits;
}

export async function summarizeProfile(label: string, file: string, window?: Window): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const perNode = hitsPerNode(profile, window);
  let totalHits = 0;
  for (const n of perNode.values()) totalHits += n;
  totalHits ||= 1;
  const totalMs = window
    ? (Math.min(window.endUs, profile.endTime) - Math.max(window.startUs, profile.startTime)) / 1000
    : (profile.endTime - profile.startTime) / 1000;
  const byFunction = new Map<string, { name: string; where: string; hits: number }>();
  const byModule = new Map<string, number>();
  let idle = 0;
  for (const node of profile.nodes) {
    const hits = perNode.get(node.id) ?? 0;
    if (hits === 0) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += hits;
      continue;
    }
    const name = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${name} ${where}`;
    const entry = byFunction.get(key) ?? { name, where, hits: 0 };
    entry.hits += hits;
    byFunction.set(key, entry);
    const mod = moduleOf(url, name);
    byModule.set(mod, (byModule.get(mod) ?? 0) + hits);
  }
  const pct = (hits: number) => Math.round((hits / totalHits) * 1000) / 10;
  return {
    label,
    file: path.relative(REPO_ROOT, file),
    totalMs,
    idlePct: pct(idle),
    topFunctions: [...byFunction.values()].sort((a, b) => b.hits - a.hits).slice(0, TOP).map((f) => ({ name: f.name, where: f.where, selfPct: pct(f.hits) })),
    byModule: [...byModule.entries()].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([module, hits]) => ({ module, selfPct: pct(hits) })),
  };
}

function shortUrl(url: string): string {
  const clean = url.replace(/^file:\/\//, '');
  const nm = clean.lastIndexOf('/node_modules/');
  if (nm >= 0) return clean.slice(nm + '/node_modules/'.length);
  if (clean.startsWith(REPO_ROOT)) return path.relative(REPO_ROOT, clean);
  return clean;
}

function moduleOf(url: string, functionName: string): string {
  if (!url) return functionName.startsWith('(') ? functionName : '(native)';
  if (url.startsWith('node:')) return 'node internals';
  const short = shortUrl(url);
  if (url.includes('/node_modules/')) {
    const parts = short.split('/');
    return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1]}` : (parts[0] ?? short);
  }
  return short;
}
