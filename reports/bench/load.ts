import autocannon from 'autocannon';
import type { CpuProbe, CpuSplit } from './cpu-usage.js';
import { fmtInt, fmtMs, Ticker } from './progress.js';

/**
 * One autocannon run (programmatic API) with progress and exact latencies. autocannon's own
 * histogram has 1 ms resolution, too coarse for a redirect that answers in a fraction of one, so
 * every response time (a float in ms) is also recorded here and the percentiles computed exactly.
 */

export type LoadOptions = {
  label: string;
  url: string;
  connections: number;
  /** Seconds; ignored when `amount` is set. */
  durationS: number;
  /** Stop after this many responses instead of after a duration. */
  amount?: number;
  requests?: autocannon.Request[];
  /** The answer a correct request gets (302 for a click, 200 otherwise); only these count as served. */
  expectedStatus: number;
  /** Measures who used the CPU during the run. */
  cpu?: CpuProbe;
  /** Also receives every response time (ms), to pool percentiles over several runs. */
  latencies?: { add(ms: number): void };
};

export type Measurement = {
  label: string;
  url: string;
  connections: number;
  durationS: number;
  responses: number;
  /** Responses with the expected status. */
  served: number;
  /** Served responses per second: the throughput figure every ratio uses. */
  rps: number;
  /** All responses per second, whatever their status. */
  rpsAll: number;
  statusCodes: Record<string, number>;
  errors: number;
  timeouts: number;
  latencyMs: { mean: number; p50: number; p90: number; p99: number; p999: number; max: number };
  /** Cores used during the run by the server, its PostgreSQL, the client, and other processes. */
  cpu?: CpuSplit;
  /** When the run happened, on the monotonic clock in µs: used to cut the engine's CPU profile. */
  window: { startUs: number; endUs: number };
  /** autocannon's own summary, for comparison with its CLI output. */
  autocannon: { requestsAverage: number; requestsStddev: number; latencyP50: number; latencyP99: number };
};

/** Growable store of response times; percentiles are computed by sorting once at the end. */
export class LatencyRecorder {
  private values = new Float64Array(1 << 16);
  count = 0;

  add(ms: number): void {
    if (this.count === this.values.length) {
      const next = new Float64Array(this.values.length * 2);
      next.set(this.values);
      this.values = next;
    }
    this.values[this.count++] = ms;
  }

  summary(): Measurement['latencyMs'] {
    const sorted = this.values.slice(0, this.count).sort();
    if (sorted.length === 0) return { mean: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0 };
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
    let sum = 0;
    for (const v of sorted) sum += v;
    const round = (v: number) => Math.round(v * 1000) / 1000;
    return {
      mean: round(sum / sorted.length),
      p50: round(at(0.5)),
      p90: round(at(0.9)),
      p99: round(at(0.99)),
      p999: round(at(0.999)),
      max: round(sorted[sorted.length - 1] ?? 0),
    };
  }
}

export async function runLoad(opts: LoadOptions): Promise<Measurement> {
  const recorder = new LatencyRecorder();
  const counted = opts.amount !== undefined;
  const ticker = new Ticker(opts.label, counted ? (opts.amount ?? 0) : opts.durationS, counted ? 'req' : 's');
  const started = performance.now();
  opts.cpu?.begin();
  const startUs = Number(process.hrtime.bigint() / 1000n);
  let endUs = startUs;

  let cpuSplit: CpuSplit | undefined;
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: opts.url,
        connections: opts.connections,
        ...(counted ? { amount: opts.amount } : { duration: opts.durationS }),
        ...(opts.requests ? { requests: opts.requests } : {}),
        timeout: 10,
      },
      (err, res) => {
        endUs = Number(process.hrtime.bigint() / 1000n);
        cpuSplit = opts.cpu?.end();
        if (err) reject(err);
        else resolve(res);
      },
    );
    instance.on('response', (_client, _status, _bytes, responseTime) => {
      recorder.add(responseTime);
      opts.latencies?.add(responseTime);
    });
    // 'tick' fires once a second with the responses counted in that second.
    instance.on('tick', ((progress: { counter: number }) => {
      const elapsed = (performance.now() - started) / 1000;
      ticker.update(counted ? recorder.count : elapsed, progress.counter);
    }) as () => void);
  });

  const statusCodes: Record<string, number> = {};
  for (const [code, stat] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = (stat as { count: number }).count;
  const served = statusCodes[String(opts.expectedStatus)] ?? 0;
  const durationS = result.duration;
  const latencyMs = recorder.summary();
  const measurement: Measurement = {
    label: opts.label,
    url: opts.url,
    connections: opts.connections,
    durationS,
    responses: recorder.count,
    served,
    rps: durationS > 0 ? served / durationS : 0,
    rpsAll: durationS > 0 ? recorder.count / durationS : 0,
    statusCodes,
    errors: result.errors,
    timeouts: result.timeouts,
    latencyMs,
    ...(cpuSplit ? { cpu: cpuSplit } : {}),
    window: { startUs, endUs },
    autocannon: {
      requestsAverage: result.requests.average,
      requestsStddev: result.requests.stddev,
      latencyP50: result.latency.p50,
      latencyP99: result.latency.p99,
    },
  };
  const others = Object.entries(statusCodes).filter(([code]) => code !== String(opts.expectedStatus));
  const odd = others.length > 0 ? `  other answers: ${others.map(([c, n]) => `${c}×${fmtInt(n)}`).join(' ')}` : '';
  const errs = result.errors > 0 ? `  errors: ${result.errors} (timeouts ${result.timeouts})` : '';
  const cpu = cpuSplit
    ? `  cores: server ${cpuSplit.serverCores}, postgres ${cpuSplit.postgresCores}, client ${cpuSplit.clientCores}, other ${cpuSplit.otherCores}${cpuSplit.stealCores > 0.05 ? `, steal ${cpuSplit.stealCores}` : ''}`
    : '';
  ticker.done(
    `${fmtInt(measurement.rps)} req/s  p50 ${fmtMs(latencyMs.p50)} ms  p99 ${fmtMs(latencyMs.p99)} ms  (${fmtInt(served)} × ${opts.expectedStatus} in ${durationS.toFixed(1)} s)${odd}${errs}${cpu}`,
  );
  return measurement;
}
