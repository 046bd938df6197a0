/**
 * What the bench prints while it works: one line per phase, and a ticking indicator during each load
 * run. On a terminal the indicator redraws one line; in a log (CI, a pipe) it prints a line every few
 * seconds instead, so a long run is never silent.
 */

const started = performance.now();
const isTty = Boolean(process.stdout.isTTY);

function clock(): string {
  const s = Math.floor((performance.now() - started) / 1000);
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

export function phase(message: string): void {
  process.stdout.write(`[bench ${clock()}] ${message}\n`);
}

export function note(message: string): void {
  process.stdout.write(`              ${message}\n`);
}

export const fmtInt = (n: number) => Math.round(n).toLocaleString('en-US');
export const fmtMs = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(1));

const BAR_WIDTH = 24;
/** Without a terminal, print at most one progress line this often. */
const LOG_EVERY_MS = 2_000;

/** A progress line for one run: `total` is seconds for timed runs or requests for counted ones. */
export class Ticker {
  private lastLog = 0;
  private lastLine = '';

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit: 's' | 'req',
  ) {}

  update(done: number, rate: number, status?: string): void {
    const fraction = this.total > 0 ? Math.min(1, done / this.total) : 0;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
    const amount = this.unit === 's' ? `${Math.min(done, this.total).toFixed(0)}/${this.total} s` : `${fmtInt(done)}/${fmtInt(this.total)}`;
    const line = `  ${this.label} [${bar}] ${amount}  ${status ?? `${fmtInt(rate)} req/s`}`;
    if (isTty) {
      process.stdout.write(`\r${line.padEnd(this.lastLine.length)}`);
      this.lastLine = line;
      return;
    }
    const now = performance.now();
    if (now - this.lastLog >= LOG_EVERY_MS) {
      process.stdout.write(`${line}\n`);
      this.lastLog = now;
    }
  }

  done(summary: string): void {
    const line = `  ${this.label}: ${summary}`;
    if (isTty) process.stdout.write(`\r${line.padEnd(this.lastLine.length)}\n`);
    else process.stdout.write(`${line}\n`);
  }
}
