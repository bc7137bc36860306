import { redact, secretsOf } from "../core/url.js";

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

const secrets: string[] = [];

/** Remember the password of a URL the user gave, so no output of the CLI ever shows it. */
export function keepSecret(url: string): void {
  secrets.push(...secretsOf(url, process.env));
}

/** Forget the remembered passwords (a new command line: runCli). */
export function forgetSecrets(): void {
  secrets.length = 0;
}

/** Text with every postgres:// password (and every remembered secret) replaced by `***`. */
export function safe(text: string): string {
  return redact(text, secrets);
}

/** Print a line (or lines) on stdout. */
export function say(text = ""): void {
  process.stdout.write(`${safe(text)}\n`);
}

/** Print one `ominipg: <message>` line on stderr. */
export function complain(message: string): void {
  process.stderr.write(`ominipg: ${oneLine(safe(message))}\n`);
}

/** Print extra diagnostics on stderr (for --verbose), redacted. */
export function detail(text: string): void {
  process.stderr.write(`${safe(text)}\n`);
}

/** Multi-line messages (e.g. a list of schema differences) joined with "; ". */
export function oneLine(text: string): string {
  return text
    .trim()
    .split(/\s*\n\s*/)
    .join("; ")
    .replace(/:; /g, ": ");
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** Rows as left-aligned columns, two spaces apart. */
export function columns(rows: string[][], indent = ""): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map(
    (row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join("  "),
  );
}
