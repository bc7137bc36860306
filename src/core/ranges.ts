/** Sorted ids as inclusive runs of consecutive ids: [lo1, hi1, lo2, hi2, ...]. */
export function toRanges(ids: readonly number[]): number[] {
  return runs(
    [...ids].sort((a, b) => a - b),
    (id) => id + 1,
  );
}

/** The same for int8 values (exact past 2^53) `step` apart, as a sequence with that (positive) INCREMENT hands out. */
export function toRuns(ids: readonly bigint[], step: bigint): bigint[] {
  return runs(
    [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)),
    (id) => id + step,
  );
}

function runs<T>(sorted: readonly T[], next: (id: T) => T): T[] {
  const out: T[] = [];
  for (const id of sorted) {
    const last = out.length - 1;
    if (last > 0 && next(out[last]!) === id) out[last] = id;
    else if (last > 0 && out[last] === id) continue;
    else out.push(id, id);
  }
  return out;
}
