/**
 * Session settings under which Ominipg reads and writes rows on both sides, so that equal values have equal
 * text (timestamptz, dates, intervals, floats, bytea, money), text is read back as the same values, and neither
 * side's own SETs leak in.
 */
export const CANONICAL_SETTINGS =
  `SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, MDY'; SET LOCAL IntervalStyle = 'postgres'; ` +
  `SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C'; ` +
  // Read, not printed: an array's NULL element is NULL (off: the text "NULL").
  `SET LOCAL array_nulls = on`;

/**
 * Local pull writes: replica role, so FK checks, cascades and user triggers do not fire for rows that come
 * from a consistent remote snapshot (the remote already enforced them, and already cascaded its deletes).
 */
export const LOCAL_SETTINGS = `${CANONICAL_SETTINGS}; SET LOCAL session_replication_role = replica`;
