import { BREAKER_MAX_OPEN_MS, BREAKER_OPEN_MS, BREAKER_THRESHOLD, PER_PUBLISHER_CONCURRENCY } from './limits.js';

/**
 * Per-publisher admission for one engine process: a concurrency cap and a circuit breaker, so one
 * dead publisher cannot take the slots, sockets or time that the others need.
 *
 * Breaker: closed until `threshold` consecutive endpoint failures; then open (no attempts) for
 * `openMs`; then half-open, letting exactly one probe through. A probe that gets any HTTP answer
 * other than 5xx/429 closes it; one that fails reopens it for twice as long, up to `maxOpenMs`.
 * Deliveries of an open publisher simply stay due in PostgreSQL; other nodes judge for themselves.
 */

export type GateOutcome = 'success' | 'failure' | 'neutral';

export type GateOptions = {
  perPublisher?: number;
  threshold?: number;
  openMs?: number;
  maxOpenMs?: number;
  now?: () => number;
};

type Circuit = { failures: number; openUntil: number; openMs: number; probing: boolean };

export class PublisherGate {
  readonly perPublisher: number;
  private readonly threshold: number;
  private readonly baseOpenMs: number;
  private readonly maxOpenMs: number;
  private readonly now: () => number;
  private readonly inFlight = new Map<string, number>();
  private readonly circuits = new Map<string, Circuit>();

  constructor(opts: GateOptions = {}) {
    this.perPublisher = opts.perPublisher ?? PER_PUBLISHER_CONCURRENCY;
    this.threshold = opts.threshold ?? BREAKER_THRESHOLD;
    this.baseOpenMs = opts.openMs ?? BREAKER_OPEN_MS;
    this.maxOpenMs = opts.maxOpenMs ?? BREAKER_MAX_OPEN_MS;
    this.now = opts.now ?? Date.now;
  }

  /** How many more attempts this publisher may start now. */
  room(publisherId: string): number {
    const busy = this.inFlight.get(publisherId) ?? 0;
    const circuit = this.circuits.get(publisherId);
    if (circuit && circuit.failures >= this.threshold) {
      if (circuit.openUntil > this.now() || circuit.probing) return 0;
      return busy === 0 ? 1 : 0;
    }
    return Math.max(0, this.perPublisher - busy);
  }

  /** Publishers whose room is below the default cap, with their room: the claim statement's per-publisher limits. */
  limits(): { ids: string[]; rooms: number[] } {
    const ids: string[] = [];
    const rooms: number[] = [];
    for (const id of new Set([...this.inFlight.keys(), ...this.circuits.keys()])) {
      const room = this.room(id);
      if (room < this.perPublisher) {
        ids.push(id);
        rooms.push(room);
      }
    }
    return { ids, rooms };
  }

  acquire(publisherId: string): void {
    this.inFlight.set(publisherId, (this.inFlight.get(publisherId) ?? 0) + 1);
    const circuit = this.circuits.get(publisherId);
    if (circuit && circuit.failures >= this.threshold && circuit.openUntil <= this.now()) circuit.probing = true;
  }

  release(publisherId: string, outcome: GateOutcome): void {
    const busy = (this.inFlight.get(publisherId) ?? 1) - 1;
    if (busy > 0) this.inFlight.set(publisherId, busy);
    else this.inFlight.delete(publisherId);

    const circuit = this.circuits.get(publisherId);
    if (outcome === 'success') {
      this.circuits.delete(publisherId);
      return;
    }
    if (outcome === 'neutral') {
      if (circuit) circuit.probing = false;
      return;
    }
    const c = circuit ?? { failures: 0, openUntil: 0, openMs: this.baseOpenMs, probing: false };
    this.circuits.set(publisherId, c);
    if (c.failures < this.threshold) {
      c.failures += 1;
      if (c.failures >= this.threshold) this.open(c, this.baseOpenMs);
    } else if (c.probing) {
      this.open(c, Math.min(c.openMs * 2, this.maxOpenMs));
    }
    // Failures of attempts that started before the circuit opened change nothing more.
  }

  /** When the earliest open circuit lets a probe through, for the worker's wake-up timer. */
  nextProbeAt(): number | undefined {
    let next: number | undefined;
    const now = this.now();
    for (const c of this.circuits.values()) {
      if (c.failures >= this.threshold && c.openUntil > now && (next === undefined || c.openUntil < next)) next = c.openUntil;
    }
    return next;
  }

  openCircuits(): number {
    const now = this.now();
    let n = 0;
    for (const c of this.circuits.values()) if (c.failures >= this.threshold && (c.openUntil > now || c.probing)) n++;
    return n;
  }

  private open(circuit: Circuit, openMs: number): void {
    circuit.openMs = openMs;
    circuit.openUntil = this.now() + openMs;
    circuit.probing = false;
  }
}
