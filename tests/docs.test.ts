import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, tempDir, type TestDatabase } from "./harness/index.js";

/**
 * Every TypeScript code block in README.md and docs/*.md runs here against the real server, so the docs
 * cannot drift from the code. A block runs as its own module with a small prelude that supplies what the
 * prose around it assumes (a connected `db` on the guide's todos schema, `syncUrl`, UI callbacks) unless
 * the block declares the name itself. Remote URLs in a block are pointed at a fresh test database, and
 * local directory paths at a temporary directory.
 */
const root = path.resolve(import.meta.dirname, "..");
const docs = [
  "README.md",
  ...fs
    .readdirSync(path.join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];
const scratch = path.join(root, "tests", ".docs-tmp");

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS todos (id SERIAL PRIMARY KEY, title TEXT NOT NULL, completed BOOLEAN DEFAULT FALSE,
     created_at TIMESTAMPTZ DEFAULT NOW(), updated_at TIMESTAMPTZ DEFAULT NOW())`,
];

/** Names the prose assumes, and how the prelude provides each one. */
const PRELUDE: Record<string, string> = {
  syncUrl: `const syncUrl = __remote;`,
  db: `const db = await Ominipg.connect({ url: __dir("prelude"), syncUrl: __remote, schemaSQL: ${JSON.stringify(SCHEMA)} });`,
  showSpinner: `const showSpinner = () => {};`,
  hideSpinner: `const hideSpinner = (_r: unknown) => {};`,
  setProgress: `const setProgress = (_p: number) => {};`,
  showError: `const showError = (_c: string, _m: string) => {};`,
};

function blocksOf(file: string): { line: number; code: string }[] {
  const text = fs.readFileSync(path.join(root, file), "utf8");
  const out: { line: number; code: string }[] = [];
  const re = /^```(?:ts|typescript)\n([\s\S]*?)^```/gm;
  for (let m = re.exec(text); m; m = re.exec(text))
    out.push({ line: text.slice(0, m.index).split("\n").length, code: m[1]! });
  return out;
}

function declares(code: string, name: string): boolean {
  return new RegExp(`\\b(const|let|var|function|class|interface)\\s+${name}\\b|import\\s*\\{[^}]*\\b${name}\\b`).test(
    code,
  );
}

const remotes: TestDatabase[] = [];
beforeAll(() => {
  fs.mkdirSync(scratch, { recursive: true });
});
afterAll(async () => {
  for (const r of remotes) await r.drop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

describe.each(docs.filter((f) => blocksOf(f).length > 0))("%s", (file) => {
  const blocks = blocksOf(file);
  it.each(blocks.map((b) => [b.line, b.code] as const))("code block at line %i runs", async (line, code) => {
    // Each block gets its own remote: blocks show different schemas for the same table names.
    const remote = await createTestDatabase();
    remotes.push(remote);
    const dir = tempDir("ominipg-docs-");
    let body = code
      .replace(/from\s+"ominipg"/g, `from ${JSON.stringify(path.join(root, "src", "index.js"))}`)
      .replace(
        /from\s+"ominipg\/(drizzle|kysely)"/g,
        (_m, a: string) => `from ${JSON.stringify(path.join(root, "src", "adapters", `${a}.js`))}`,
      )
      .replace(/"postgres(ql)?:\/\/[^"]*"/g, "__remote")
      .replace(/"\.\/([\w.-]+)"/g, (_m, name: string) => `__dir(${JSON.stringify(name)})`);
    const needs = Object.keys(PRELUDE).filter((n) => new RegExp(`\\b${n}\\b`).test(body) && !declares(body, n));
    const importsOminipg = /import\s*\{[^}]*\bOminipg\b[^}]*\}/.test(body);
    const prelude = [
      importsOminipg ? "" : `import { Ominipg } from ${JSON.stringify(path.join(root, "src", "index.js"))};`,
      `const __remote = ${JSON.stringify(remote.url)};`,
      `const __dir = (name: string) => ${JSON.stringify(dir)} + "/" + name;`,
      ...needs.map((n) => PRELUDE[n]!),
    ].join("\n");
    // Close whatever `db` the block or the prelude opened; a block that closes it itself is fine (idempotent).
    const epilogue = /\bdb\b/.test(body) ? `\nawait db.close();\n` : "";
    const imports = body.match(/^import[^;]*;\s*$/gm) ?? [];
    body = body.replace(/^import[^;]*;\s*$/gm, "");
    const file2 = path.join(scratch, `${path.basename(file, ".md")}-${line}.ts`);
    fs.writeFileSync(file2, `${imports.join("\n")}\n${prelude}\n${body}\n${epilogue}\nexport {};\n`);
    await expect(import(file2)).resolves.toBeDefined();
  });
});
