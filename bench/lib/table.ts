/** Plain-text and Markdown tables. */

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  /** Columns aligned right (numbers). Default: every column but the first ones that hold text. */
  alignRight?: boolean[];
  notes?: string[];
}

function isNumeric(cell: string): boolean {
  return /^[-+]?[\d,.]+\s?(x|µs|ms|s|MB|%|\/s|k)?$|^n\/a$/.test(cell.trim());
}

function alignment(t: Table): boolean[] {
  return (
    t.alignRight ??
    t.headers.map((_, c) => t.rows.length > 0 && t.rows.every((r) => isNumeric(r[c] ?? "") || (r[c] ?? "") === ""))
  );
}

export function textTable(t: Table): string {
  const right = alignment(t);
  const widths = t.headers.map((h, c) => Math.max(h.length, ...t.rows.map((r) => (r[c] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => (right[c] ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join("  ");
  const out = [t.title, line(t.headers), widths.map((w) => "-".repeat(w)).join("  "), ...t.rows.map(line)];
  for (const n of t.notes ?? []) out.push(`  ${n}`);
  return out.join("\n");
}

export function markdownTable(t: Table): string {
  const right = alignment(t);
  const esc = (s: string) => s.replace(/\|/g, "\\|");
  const out = [
    `| ${t.headers.map(esc).join(" | ")} |`,
    `|${t.headers.map((_, c) => (right[c] ? "---:" : "---")).join("|")}|`,
    ...t.rows.map((r) => `| ${r.map(esc).join(" | ")} |`),
  ];
  return out.join("\n");
}
