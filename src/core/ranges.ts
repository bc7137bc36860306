/** Sorted ids as inclusive runs of consecutive ids: [lo1, hi1, lo2, hi2, ...]. */
export function toRanges(ids: readonly number[]): number[] {
  const sorted = [...ids].sort((a, b) => a - b);
  const out: number[] = [];
  for (const id of sorted) {
    const last = out.length - 1;
    if (last > 0 && out[last] === id - 1) out[last] = id;
    else if (last > 0 && out[last] === id) continue;
    else out.push(id, id);
  }
  return out;
}
