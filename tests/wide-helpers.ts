// A wide table (issue 18): about 30 columns, a ~2 KB jsonb document and a ~1 KB text, for the capture and sync
// tests of wide rows.

const WIDE_COLUMNS = [
  ...Array.from({ length: 10 }, (_, i) => `n${i} int NOT NULL DEFAULT 0`),
  ...Array.from({ length: 10 }, (_, i) => `t${i} text NOT NULL DEFAULT ''`),
  ...Array.from({ length: 4 }, (_, i) => `ts${i} timestamptz`),
  ...Array.from({ length: 3 }, (_, i) => `m${i} numeric`),
];
export const WIDE_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS wide (id int PRIMARY KEY, email text UNIQUE, parent int REFERENCES wide (id), ${WIDE_COLUMNS.join(", ")}, doc jsonb NOT NULL, body text NOT NULL)`,
];
/** A ~2 KB document and a ~1 KB text, as the issue measures. */
export const DOC = JSON.stringify(
  Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`k${i}`, `value ${i} `.padEnd(24, "x")])),
);
export const BODY = "lorem ipsum ".repeat(85);
export const wideRow = (id: number) =>
  `INSERT INTO wide (id, email, doc, body, ts0, m0) VALUES (${id}, 'u${id}@x', '${DOC}', '${BODY}', '2024-05-01 10:00+02', 1.5)`;
