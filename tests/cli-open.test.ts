// The CLI opens a data directory once: with storedSyncScope (internal, the CLI's), connect() reads the sync
// scope the app stored at its last connect in the same open, instead of the CLI opening the directory first
// to read it. No server: an unreachable syncUrl is enough, connect() never waits on the network.
import { spawnSync } from "node:child_process";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { tempDir, unreachableUrl } from "./harness/index.js";
import { SHORT_LIVED } from "./process-helpers.js";

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, v text)`,
  `CREATE TABLE IF NOT EXISTS scratch (id int PRIMARY KEY, v text)`,
];

/** The tables a write was captured for, after one insert into each of items and scratch. */
async function capturedTables(db: Ominipg, id: number): Promise<string[]> {
  await db.query(`INSERT INTO items VALUES ($1, 'x')`, [id]);
  await db.query(`INSERT INTO scratch VALUES ($1, 'x')`, [id]);
  const { rows } = await db.query<{ table_name: string }>(
    `SELECT DISTINCT table_name FROM _sync_queue WHERE (new_row->>'id')::int = $1 ORDER BY 1`,
    [id],
  );
  return rows.map((r) => r.table_name);
}

describe("connect({ storedSyncScope: true })", () => {
  it("syncs what the app stored, the caller's sync options winning; without it, the default scope", async () => {
    const url = path.join(tempDir("ominipg-cli-open-"), "db");
    const syncUrl = unreachableUrl();
    const app = await Ominipg.connect({ url, syncUrl, schemaSQL: SCHEMA, sync: { exclude: ["scratch"] } });
    expect(await capturedTables(app, 1)).toEqual(["items"]);
    await app.close();

    const stored = await Ominipg.connect({ url, syncUrl, storedSyncScope: true });
    expect(await capturedTables(stored, 2)).toEqual(["items"]);
    await stored.close();

    const overridden = await Ominipg.connect({ url, syncUrl, storedSyncScope: true, sync: { exclude: ["items"] } });
    expect(await capturedTables(overridden, 3)).toEqual(["scratch"]);
    await overridden.close();

    const plain = await Ominipg.connect({ url, syncUrl });
    expect(await capturedTables(plain, 4)).toEqual(["items", "scratch"]);
    await plain.close();

    await expect(Ominipg.connect({ url, storedSyncScope: "yes" as never })).rejects.toMatchObject({
      code: "CONFIG_INVALID",
    });
  });
});

describe("connect({ deferParser: true })", () => {
  // In a new process: the parser is loaded once per process, and this one's tests loaded it long ago.
  it("loads the SQL parser at the first query instead of the open: a write is still captured", () => {
    const index = new URL("../dist/index.js", import.meta.url).href;
    const code =
      `import { Ominipg } from ${JSON.stringify(index)};\n` +
      `const db = await Ominipg.connect({ url: ":memory:", syncUrl: process.argv[1], deferParser: true, ` +
      `schemaSQL: [${JSON.stringify(SCHEMA[0])}] });\n` +
      `await db.query("INSERT INTO items VALUES (1, 'x')");\n` +
      `const { rows } = await db.query("SELECT table_name, op FROM _sync_queue");\n` +
      `console.log(JSON.stringify(rows));\n` +
      `await db.close();`;
    const child = spawnSync(process.execPath, [SHORT_LIVED, "--input-type=module", "-e", code, unreachableUrl()], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(child.stderr).toBe("");
    expect(JSON.parse(child.stdout.trim())).toEqual([{ table_name: "items", op: "I" }]);
  });
});
