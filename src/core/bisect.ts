/**
 * The one way Ominipg finds the rows a database refuses among many written together: apply the whole unit;
 * if that fails and `split` divides the unit for that error (a row-level refusal of a unit of several rows),
 * apply each part on its own, recursively, in order; a unit that cannot be divided further goes to `refused`
 * with its error (which may set it aside, or throw to stop).
 */
export async function isolateRefused<U>(
  unit: U,
  apply: (unit: U) => Promise<void>,
  split: (unit: U, err: unknown) => readonly U[] | undefined,
  refused: (unit: U, err: unknown) => Promise<void>,
): Promise<void> {
  try {
    await apply(unit);
  } catch (err) {
    const parts = split(unit, err);
    if (!parts) return refused(unit, err);
    for (const part of parts) await isolateRefused(part, apply, split, refused);
  }
}

/** The two halves of a list (the first one larger when its length is odd), or undefined for one item or none. */
export function halves<T>(items: readonly T[]): [T[], T[]] | undefined {
  if (items.length < 2) return undefined;
  const mid = Math.ceil(items.length / 2);
  return [items.slice(0, mid), items.slice(mid)];
}
