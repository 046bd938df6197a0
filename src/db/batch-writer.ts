/**
 * Buffers rows in memory and writes them in set-based batches, so a hot path (click redirect,
 * pixel) answers without waiting for PostgreSQL. Bounded delay: a row waits at most `maxDelayMs`
 * before a flush starts. A failed flush keeps its rows and retries; `close()` flushes what is left.
 *
 * What a crash can lose: rows accepted within the last `maxDelayMs` (plus any backlog while
 * PostgreSQL was down). That is the price of never making a user's redirect wait on the database.
 */

export type BatchWriterOptions<T> = {
  name: string;
  /**
   * `afterFailure`: the previous write failed, so some of these rows may already be in PostgreSQL
   * (the failure may have been a lost acknowledgement): the write must tolerate rows it has written before.
   */
  write: (rows: T[], attempt: { afterFailure: boolean }) => Promise<void>;
  maxBatch?: number;
  maxDelayMs?: number;
  /** Beyond this many buffered rows (a long outage) new rows are dropped and counted, not held forever. */
  maxBuffered?: number;
  onFlush?: (size: number, ms: number) => void;
  onError?: (err: unknown, buffered: number) => void;
  onDrop?: (count: number) => void;
  /**
   * Whether a failed write is worth retrying (PostgreSQL unreachable) or the rows themselves are bad.
   * Bad rows are retried one by one so a single poison row cannot block the rest, then dropped.
   */
  isTransient?: (err: unknown) => boolean;
  /** Rows with a key can be found by it until they are in PostgreSQL (`get`). */
  keyOf?: (row: T) => string;
};

const RETRY_DELAY_MS = 500;

export class BatchWriter<T> {
  private buffer: T[] = [];
  /** Rows accepted and not yet written or dropped, by key (only with `keyOf`). */
  private readonly unwritten = new Map<string, T>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;
  private lastWriteFailed = false;
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly maxBuffered: number;

  constructor(private readonly opts: BatchWriterOptions<T>) {
    this.maxBatch = opts.maxBatch ?? 1000;
    this.maxDelayMs = opts.maxDelayMs ?? 20;
    this.maxBuffered = opts.maxBuffered ?? 200_000;
  }

  get pending(): number {
    return this.buffer.length;
  }

  /** A row accepted but not yet readable from PostgreSQL (a click a postback arrives for within ms). */
  get(key: string): T | undefined {
    return this.unwritten.get(key);
  }

  add(row: T): boolean {
    if (this.buffer.length >= this.maxBuffered) {
      this.opts.onDrop?.(1);
      return false;
    }
    this.buffer.push(row);
    if (this.opts.keyOf) this.unwritten.set(this.opts.keyOf(row), row);
    if (this.buffer.length >= this.maxBatch) this.kick(0);
    else this.kick(this.maxDelayMs);
    return true;
  }

  /** Writes everything buffered so far; resolves once it is in PostgreSQL (or throws). */
  async flush(): Promise<void> {
    while (this.buffer.length > 0 || this.flushing) {
      if (this.flushing) {
        await this.flushing.catch(() => undefined);
        continue;
      }
      this.flushing = this.writeOnce();
      try {
        await this.flushing;
      } finally {
        this.flushing = undefined;
      }
    }
  }

  async close(timeoutMs = 10_000): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    const deadline = Date.now() + timeoutMs;
    while (this.buffer.length > 0 || this.flushing) {
      try {
        await this.flush();
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, RETRY_DELAY_MS));
      }
    }
  }

  private kick(delayMs: number): void {
    if (this.closed) return;
    if (this.timer && delayMs > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch((err) => {
        this.opts.onError?.(err, this.buffer.length);
        if (this.buffer.length > 0) this.kickAfterFailure();
      });
    }, delayMs);
  }

  private kickAfterFailure(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick(0);
    }, RETRY_DELAY_MS);
  }

  private async writeOnce(): Promise<void> {
    const batch = this.buffer.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    const started = performance.now();
    try {
      await this.opts.write(batch, { afterFailure: this.lastWriteFailed });
      this.lastWriteFailed = false;
      this.forget(batch);
    } catch (err) {
      this.lastWriteFailed = true;
      if (this.opts.isTransient && !this.opts.isTransient(err)) {
        await this.writeOneByOne(batch, err);
        // Every row of the batch is now written or dropped: the next batch shares none of them.
        this.lastWriteFailed = false;
        return;
      }
      // Put the rows back in front so order and content survive the retry.
      this.buffer.unshift(...batch);
      throw err;
    }
    this.opts.onFlush?.(batch.length, performance.now() - started);
  }

  private async writeOneByOne(batch: T[], cause: unknown): Promise<void> {
    let dropped = 0;
    for (const [i, row] of batch.entries()) {
      try {
        await this.opts.write([row], { afterFailure: true });
      } catch (err) {
        if (this.opts.isTransient?.(err)) {
          this.buffer.unshift(...batch.slice(i));
          throw err;
        }
        dropped++;
      }
      this.forget([row]);
    }
    if (dropped > 0) {
      this.opts.onDrop?.(dropped);
      this.opts.onError?.(cause, this.buffer.length);
    }
  }

  private forget(rows: T[]): void {
    const keyOf = this.opts.keyOf;
    if (keyOf) for (const row of rows) this.unwritten.delete(keyOf(row));
  }
}
