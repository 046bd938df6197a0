import { randomFillSync } from 'node:crypto';

/**
 * Cryptographically random bytes, drawn from a pooled buffer refilled 4 KiB at a time. One
 * `randomBytes(8)` per click was a measurable share of the redirect's CPU (a system call each);
 * the bytes are the same CSPRNG's, only fetched in bulk.
 */

const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

export function randomInto(target: Buffer, at: number, length: number): void {
  if (length > POOL_SIZE) {
    randomFillSync(target, at, length);
    return;
  }
  if (offset + length > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  pool.copy(target, at, offset, offset + length);
  // Never hand out the same bytes twice.
  pool.fill(0, offset, offset + length);
  offset += length;
}

export function randomBuffer(length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  randomInto(out, 0, length);
  return out;
}
