/** Shared ordering and windows of the finance reports. */

/** Code-point order by id then currency, the same whatever collation the database was created with. */
export function sortByIdThenCurrency<T extends { currency: string }>(rows: readonly T[], idOf: (row: T) => string): T[] {
  return [...rows].sort((a, b) => {
    const ia = idOf(a);
    const ib = idOf(b);
    if (ia !== ib) return ia < ib ? -1 : 1;
    return a.currency < b.currency ? -1 : a.currency > b.currency ? 1 : 0;
  });
}

/**
 * The last UTC day a report's conversions can fall on: rates after it are never needed. `to` is
 * exclusive, so a `to` at midnight ends on the day before; without `to` every set is loaded.
 */
export function throughDayOf(to: Date | undefined): string | undefined {
  return to ? new Date(to.getTime() - 1).toISOString().slice(0, 10) : undefined;
}
