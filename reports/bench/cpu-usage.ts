import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

/**
 * Who used the CPU during a run, in cores (CPU seconds per wall second): the measured server (with
 * its child processes: the workers of a WORKERS > 1 engine), its PostgreSQL, its redis-server if
 * given, the load generator (this process), and everything else on the machine. On a small
 * machine these share the same cores, so a figure is only readable next to this split; a large
 * "other" means a busy neighbour disturbed the run. Linux /proc only; elsewhere it is left out.
 */

export type CpuSplit = {
  /** Wall seconds the split covers: cores × wallS is CPU seconds. */
  wallS: number;
  serverCores: number;
  postgresCores: number;
  /** 0 when no redis-server was given to the probe. */
  redisCores: number;
  clientCores: number;
  /** Busy time not spent by the three above: other processes (and kernel work none of them is charged for). */
  otherCores: number;
  /** Time the hypervisor gave this VM's CPUs to someone else. */
  stealCores: number;
  idleCores: number;
};

type Snapshot = { wallMs: number; busyTicks: number; idleTicks: number; stealTicks: number; server: number; postgres: number; redis: number; clientUs: number };

const CLK_TCK = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
  const n = Number(out.stdout?.trim());
  return Number.isFinite(n) && n > 0 ? n : 100;
})();

/** utime + stime of one process (all its threads), in ticks; undefined if it is gone. */
function processTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After the command name: state(0) ppid(1) ... utime(11) stime(12)
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/**
 * Each given process and its direct children (a postmaster's backends and writers, a cluster
 * primary's workers), summed per parent, in one pass over /proc.
 */
function familyTicks(parents: (number | undefined)[]): number[] {
  const totals = parents.map((pid) => (pid === undefined ? 0 : (processTicks(pid) ?? 0)));
  const index = new Map(parents.flatMap((pid, i) => (pid === undefined ? [] : [[pid, i] as const])));
  if (index.size === 0) return totals;
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || index.has(pid)) continue;
    const slot = index.get(parentOf(pid) ?? -1);
    if (slot !== undefined) totals[slot] = (totals[slot] ?? 0) + (processTicks(pid) ?? 0);
  }
  return totals;
}

function machineTicks(): { busy: number; idle: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).map(Number);
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
}

export class CpuProbe {
  private start: Snapshot | undefined;
  readonly available = process.platform === 'linux';

  constructor(
    private readonly serverPid: number,
    private readonly postmasterPid: number | undefined,
    private readonly redisPid?: number,
  ) {}

  private snap(): Snapshot {
    const m = machineTicks();
    const usage = process.cpuUsage();
    const [server = 0, postgres = 0] = familyTicks([this.serverPid, this.postmasterPid]);
    return {
      wallMs: performance.now(),
      busyTicks: m.busy,
      idleTicks: m.idle,
      stealTicks: m.steal,
      server,
      postgres,
      redis: this.redisPid === undefined ? 0 : (processTicks(this.redisPid) ?? 0),
      clientUs: usage.user + usage.system,
    };
  }

  begin(): void {
    if (this.available) this.start = this.snap();
  }

  end(): CpuSplit | undefined {
    if (!this.available || !this.start) return undefined;
    return this.split(this.start, this.snap());
  }

  /** The split over the next `windowMs`, independent of begin()/end(). */
  async sample(windowMs: number): Promise<CpuSplit | undefined> {
    if (!this.available) return undefined;
    const a = this.snap();
    await new Promise((r) => setTimeout(r, windowMs));
    return this.split(a, this.snap());
  }

  private split(a: Snapshot, b: Snapshot): CpuSplit | undefined {
    const wallS = (b.wallMs - a.wallMs) / 1000;
    if (wallS <= 0) return undefined;
    const cores = (ticks: number) => ticks / CLK_TCK / wallS;
    const serverCores = cores(b.server - a.server);
    const postgresCores = cores(b.postgres - a.postgres);
    const redisCores = cores(b.redis - a.redis);
    const clientCores = (b.clientUs - a.clientUs) / 1e6 / wallS;
    const busyCores = cores(b.busyTicks - a.busyTicks);
    const r = (v: number) => Math.round(Math.max(0, v) * 100) / 100;
    return {
      wallS: Math.round(wallS * 1000) / 1000,
      serverCores: r(serverCores),
      postgresCores: r(postgresCores),
      redisCores: r(redisCores),
      clientCores: r(clientCores),
      otherCores: r(busyCores - serverCores - postgresCores - redisCores - clientCores),
      stealCores: r(cores(b.stealTicks - a.stealTicks)),
      idleCores: r(cores(b.idleTicks - a.idleTicks)),
    };
  }
}

/** The postmaster of a server on this machine: the parent of our own backend (undefined if remote). */
export function postmasterOfBackend(backendPid: number): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    if (readFileSync(`/proc/${backendPid}/comm`, 'utf8').trim() !== 'postgres') return undefined;
  } catch {
    return undefined;
  }
  const parent = parentOf(backendPid);
  return parent !== undefined && parent > 1 ? parent : undefined;
}

