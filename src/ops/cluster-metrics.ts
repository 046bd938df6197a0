import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

/**
 * `/metrics` under WORKERS > 1: one scrape answers for the whole box, whichever process it reaches.
 * The cluster hands each connection to any worker, so a per-process answer would make every counter
 * jump between scrapes. A worker that gets the scrape asks the primary; the primary asks every
 * worker for its registry (as JSON over the IPC channel) and merges them.
 *
 * Merging: counters and histograms are summed. Gauges of state a process holds (rows buffered,
 * attempts in flight) are summed too; every other engine gauge reads state shared through PostgreSQL
 * (deliveries open, the last reconciliation, connections by state) or is a 0/1 flag, which each
 * worker reports alike: those take the maximum, not n times the value. prom-client's default
 * process and Node.js metrics keep the aggregation it gives them (memory summed, event-loop lag
 * averaged, start time omitted).
 */

const PER_PROCESS_GAUGES = new Set([
  'postback_engine_db_batch_buffered_rows',
  'postback_engine_delivery_attempts_in_flight',
  'postback_engine_delivery_circuits_open',
]);
const ENGINE_PREFIX = 'postback_engine_';

const REGISTRY_REQUEST = 'pbe:registry-request';
const REGISTRY_REPLY = 'pbe:registry-reply';
const SCRAPE_REQUEST = 'pbe:scrape-request';
const SCRAPE_REPLY = 'pbe:scrape-reply';
/** A worker that does not answer within this (stuck, or exiting) fails the scrape instead of hanging it. */
const ANSWER_TIMEOUT_MS = 5_000;

type Message = { type?: unknown; id?: unknown; metrics?: unknown; text?: unknown; error?: unknown };
type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;
type Aggregator = WorkerMetrics[number]['aggregator'];

const asMessage = (raw: unknown): Message => (typeof raw === 'object' && raw !== null ? (raw as Message) : {});

/** How a series is merged across workers (see above). */
export function aggregatorFor(metric: { name: string; type: string; aggregator: Aggregator }): Aggregator {
  if (metric.type !== 'gauge' || !metric.name.startsWith(ENGINE_PREFIX)) return metric.aggregator;
  return PER_PROCESS_GAUGES.has(metric.name) ? 'sum' : 'max';
}

/** Merges workers' `getMetricsAsJSON()` into one exposition text. */
export async function mergeWorkerMetrics(perWorker: WorkerMetrics[]): Promise<string> {
  const adjusted = perWorker.map((metrics) => metrics.map((m) => ({ ...m, aggregator: aggregatorFor({ name: m.name, type: String(m.type), aggregator: m.aggregator }) })));
  return AggregatorRegistry.aggregate(adjusted).metrics();
}

/** Primary side: answers workers' scrapes with the whole box, and serves the same text to its own listener. */
export class ClusterMetrics {
  private nextId = 0;
  private readonly waiting = new Map<number, { replies: WorkerMetrics[]; pending: number; done: (err?: Error) => void }>();

  constructor() {
    cluster.on('message', (worker, raw) => {
      const message = asMessage(raw);
      if (message.type === REGISTRY_REPLY && typeof message.id === 'number') this.onReply(message.id, message);
      else if (message.type === SCRAPE_REQUEST && typeof message.id === 'number') void this.answerScrape(worker, message.id);
    });
  }

  async scrape(): Promise<string> {
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w?.isConnected() === true);
    const id = this.nextId++;
    const replies: WorkerMetrics[] = [];
    await new Promise<void>((resolve, reject) => {
      if (workers.length === 0) return resolve();
      const timer = setTimeout(() => finish(new Error(`a worker did not send its metrics within ${ANSWER_TIMEOUT_MS} ms`)), ANSWER_TIMEOUT_MS);
      const finish = (err?: Error) => {
        clearTimeout(timer);
        this.waiting.delete(id);
        if (err) reject(err);
        else resolve();
      };
      this.waiting.set(id, { replies, pending: workers.length, done: finish });
      for (const w of workers) w.send({ type: REGISTRY_REQUEST, id });
    });
    return mergeWorkerMetrics(replies);
  }

  private onReply(id: number, message: Message): void {
    const request = this.waiting.get(id);
    if (!request) return;
    if (typeof message.error === 'string') {
      request.done(new Error(`a worker could not collect its metrics: ${message.error}`));
      return;
    }
    request.replies.push(message.metrics as WorkerMetrics);
    if (--request.pending === 0) request.done();
  }

  private async answerScrape(worker: Worker, id: number): Promise<void> {
    try {
      worker.send({ type: SCRAPE_REPLY, id, text: await this.scrape() });
    } catch (err) {
      worker.send({ type: SCRAPE_REPLY, id, error: err instanceof Error ? err.message : String(err) });
    }
  }
}

/**
 * Worker side: sends `registry` when the primary asks, and returns the scrape function `/metrics`
 * uses in this worker (the box's text, through the primary).
 */
export function workerMetrics(registry: Registry): () => Promise<string> {
  let nextId = 0;
  const waiting = new Map<number, { resolve: (text: string) => void; reject: (err: Error) => void }>();
  process.on('message', (raw) => {
    const message = asMessage(raw);
    if (message.type === REGISTRY_REQUEST) {
      registry.getMetricsAsJSON().then(
        (metrics) => process.send?.({ type: REGISTRY_REPLY, id: message.id, metrics }),
        (err: unknown) => process.send?.({ type: REGISTRY_REPLY, id: message.id, error: err instanceof Error ? err.message : String(err) }),
      );
    } else if (message.type === SCRAPE_REPLY && typeof message.id === 'number') {
      const request = waiting.get(message.id);
      waiting.delete(message.id);
      if (typeof message.text === 'string') request?.resolve(message.text);
      else request?.reject(new Error(typeof message.error === 'string' ? message.error : 'the primary sent no metrics'));
    }
  });
  return () =>
    new Promise<string>((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`the cluster primary did not answer the scrape within ${2 * ANSWER_TIMEOUT_MS} ms`));
      }, 2 * ANSWER_TIMEOUT_MS);
      waiting.set(id, {
        resolve: (text) => {
          clearTimeout(timer);
          resolve(text);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      process.send?.({ type: SCRAPE_REQUEST, id });
    });
}
