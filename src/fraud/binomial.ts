/**
 * The exact binomial upper tail P(X >= k) for X ~ Binomial(n, p), computed in log space so it stays
 * exact (to double precision) for millions of trials, where a normal approximation or a ±3σ rule is
 * wrong precisely in the small-count region where fraud shows up first.
 */

const LANCZOS_G = 7;
const LANCZOS = [
  0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
  -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
];

/** ln Γ(x) for x > 0 (Lanczos approximation, relative error below 1e-14). */
export function logGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - logGamma(1 - x);
  const z = x - 1;
  let a = LANCZOS[0] as number;
  const t = z + LANCZOS_G + 0.5;
  for (let i = 1; i < LANCZOS.length; i++) a += (LANCZOS[i] as number) / (z + i);
  return 0.5 * Math.log(2 * Math.PI) + (z + 0.5) * Math.log(t) - t + Math.log(a);
}

function logPmf(i: number, n: number, p: number): number {
  return logGamma(n + 1) - logGamma(i + 1) - logGamma(n - i + 1) + i * Math.log(p) + (n - i) * Math.log1p(-p);
}

/** Summation stops once a term no longer changes the sum in double precision. */
const NEGLIGIBLE = 1e-17;

export function binomialUpperTail(k: number, n: number, p: number): number {
  if (k <= 0) return 1;
  if (k > n) return 0;
  if (p <= 0) return 0;
  if (p >= 1) return 1;
  const mode = Math.floor((n + 1) * p);
  const odds = p / (1 - p);
  if (k > mode) {
    // Terms fall from k upwards: sum the tail itself.
    let term = Math.exp(logPmf(k, n, p));
    let sum = term;
    for (let i = k; i < n && term > sum * NEGLIGIBLE; i++) {
      term *= ((n - i) / (i + 1)) * odds;
      sum += term;
    }
    return Math.min(1, sum);
  }
  // k is at or below the mode: the tail is large; subtract the lower tail, whose terms fall downwards.
  let term = Math.exp(logPmf(k - 1, n, p));
  let lower = term;
  for (let i = k - 1; i > 0 && term > lower * NEGLIGIBLE; i--) {
    term *= (i / (n - i + 1)) / odds;
    lower += term;
  }
  return Math.max(0, 1 - lower);
}
