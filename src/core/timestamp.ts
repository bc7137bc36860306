/**
 * A `timestamp` (without time zone) as a Date, its wall time read as UTC: the same instant whatever the
 * process's time zone, and the instant a Date given as a parameter stands for (it is sent as its ISO text, in
 * UTC), so a value comes back as it was written. PGlite reads it in the process's time zone: outside UTC every
 * value came back shifted. (The local database's; direct mode reads it as postgres.js does, docs/API.md.) "infinity" / "-infinity" as ±Infinity (as PGlite reads them); what a
 * Date cannot hold (BC, a year past 9999) as its text.
 */
export function parseTimestamp(text: string): Date | number | string {
  if (text === "infinity") return Infinity;
  if (text === "-infinity") return -Infinity;
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)$/.exec(text);
  return m ? new Date(`${m[1]}T${m[2]}Z`) : text;
}
