/**
 * The Wilson score interval for a binomial proportion. Chosen over the normal ("Wald") interval
 * because the counts this engine reports are often small (a rule reviewed 7 times, a pattern caught
 * 498 of 500): Wald collapses to zero width at 0 or n successes and leaves [0, 1] near them, while
 * Wilson stays inside [0, 1] and keeps close to its nominal coverage down to a handful of trials.
 */

export type Interval = { low: number; high: number };

/** z for a two-sided 95 % interval. */
export const Z95 = 1.959963984540054;

export function wilsonInterval(successes: number, trials: number, z = Z95): Interval | null {
  if (!Number.isInteger(successes) || !Number.isInteger(trials) || successes < 0 || successes > trials) {
    throw new RangeError(`wilsonInterval needs 0 <= successes <= trials (integers), got ${successes} of ${trials}`);
  }
  if (trials === 0) return null;
  const p = successes / trials;
  const z2 = z * z;
  const denominator = 1 + z2 / trials;
  const centre = (p + z2 / (2 * trials)) / denominator;
  const half = (z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials))) / denominator;
  // At 0 or n successes the exact bound is 0 or 1; floating point would leave 1e-17 off it.
  return { low: successes === 0 ? 0 : Math.max(0, centre - half), high: successes === trials ? 1 : Math.min(1, centre + half) };
}
