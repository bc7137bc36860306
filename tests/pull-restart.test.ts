// A pull whose remote snapshot is started again (here: its connection terminated mid-way, so the retry policy runs
// the snapshot again) reports each row and conflict once: the tables the first snapshot finished are read again
// whole by the second (feed "off": the hash diff), which finds their held rows and conflicts again itself.
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { Ominipg, type ConflictEvent } from "../src/index.js";
import { createTestDatabase, pgliteTemplate } from "./harness/index.js";
import { cleanupAfterEach } from "./harness/cleanup.js";

const cleanup = cleanupAfterEach();

/** Terminate every other session of the database, synchronously (the pull must not go on meanwhile). */
function terminateOthers(url: string): void {
  const script = `import postgres from "postgres"; const sql = postgres(process.argv[1]);
    await sql\`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()\`;
    await sql.end();`;
  execFileSync(process.execPath, ["--input-type=module", "-e", script, url], { cwd: process.cwd() });
}

describe("a pull started again", () => {
  it("after a lost connection: a held row of a table both snapshots diffed counts once, and so does its conflict", async () => {
    const remote = await createTestDatabase();
    cleanup(() => remote.drop());
    const schema = [`CREATE TABLE aa (id int PRIMARY KEY, v text)`, `CREATE TABLE bb (id int PRIMARY KEY, v text)`];
    for (const s of schema) await remote.sql.unsafe(s);
    await remote.sql`INSERT INTO aa VALUES (1, 'x'), (2, 'x')`;
    await remote.sql`INSERT INTO bb VALUES (1, 'x')`;
    const db = await Ominipg.connect({
      loadDataDir: await pgliteTemplate(),
      syncUrl: remote.url,
      schemaSQL: schema.map((s) => s.replace("CREATE TABLE", "CREATE TABLE IF NOT EXISTS")),
      remoteSchema: "skip",
      sync: { feed: "off", retry: { attempts: 3, baseDelayMs: 20, maxDelayMs: 50 } },
    });
    cleanup(() => db.close());
    await db.pull();
    const events: ConflictEvent[] = [];
    db.on("conflict", (c) => events.push(c));
    await db.query(`UPDATE aa SET v = 'local' WHERE id = 1`); // held by the pull, a conflict with the remote's
    await remote.sql`UPDATE aa SET v = 'remote' WHERE id = 1`;
    await remote.sql`UPDATE aa SET v = 'y' WHERE id = 2`;
    await remote.sql`UPDATE bb SET v = 'y' WHERE id = 1`;
    let terminated = false;
    db.on("pull:progress", (p) => {
      if (terminated || p.table !== "public.bb") return;
      terminated = true;
      terminateOthers(remote.url);
    });
    const r = await db.pull();
    expect(terminated).toBe(true);
    expect(r.tables["public.aa"]).toMatchObject({ strategy: "diff", upserted: 1, skipped: 1 });
    expect(r.tables["public.bb"]).toMatchObject({ strategy: "diff", upserted: 1 });
    expect(r.conflicts).toBe(1);
    expect((await db.query(`SELECT id, v FROM aa ORDER BY id`)).rows).toEqual([
      { id: 1, v: "local" },
      { id: 2, v: "y" },
    ]);
  });
});
