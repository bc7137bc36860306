// Crash: a child process writes through a persistent directory (single statements, transaction(),
// BEGIN/COMMIT, savepoints, rollbacks, a key change, TRUNCATE) and syncs, and is killed with SIGKILL at
// points chosen by seed: inside a transaction, right after a COMMIT, in the middle of a sync, between a
// batch's remote COMMIT and its local clean-up, and at random moments. After the last restart and a final
// sync():
//  - the local database equals a reference run of the same workload without kills (nothing committed is
//    lost, nothing rolled back exists), every synced table's checksum is the same on both sides;
//  - a remote audit trigger saw every row version written at most once (exactly once), and no rolled-back
//    value ever reached the remote.
// OMINIPG_CRASH_SEED=<n> replays a run; OMINIPG_CRASH_KILLS=<n> sets the number of kills (npm run
// test:soak runs 40). The seed is printed, and prefixed to every failure.
import { spawn } from "node:child_process";
import { randomInt } from "node:crypto";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { createTestDatabase, tempDir, type TestDatabase } from "./harness/index.js";
import { fixtureArgs } from "./process-helpers.js";
import { inject } from "vitest";
import { ROLLED_BACK, SCHEMA, TABLES, rng, runOp } from "./fixtures/reliability-workload.mjs";

const SEED = Number(process.env["OMINIPG_CRASH_SEED"] ?? randomInt(1, 2 ** 31));
const KILLS = Number(process.env["OMINIPG_CRASH_KILLS"] ?? 10);
const OPS = KILLS * 10 + 20;
const SYNC_EVERY = 5;
const KINDS = ["mid-transaction", "after-commit", "mid-sync", "after-remote-commit", "random"] as const;
type Kind = (typeof KINDS)[number];

const AUDIT = [
  `CREATE TABLE audit (seq bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL, stamp bigint, note text)`,
  `CREATE FUNCTION audit_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
     IF TG_OP = 'DELETE' THEN INSERT INTO audit (tbl, op, stamp) VALUES (TG_TABLE_NAME, 'D', OLD.stamp);
     ELSE INSERT INTO audit (tbl, op, stamp, note) VALUES (TG_TABLE_NAME, left(TG_OP, 1), NEW.stamp, to_jsonb(NEW)->>'note'); END IF;
     RETURN NULL; END $$`,
  ...Object.keys(TABLES).map(
    (t) =>
      `CREATE TRIGGER ${t}_audit AFTER INSERT OR UPDATE OR DELETE ON ${t} FOR EACH ROW EXECUTE FUNCTION audit_row()`,
  ),
];

interface KillPlan {
  at: Kind;
  n: number;
  delayMs: number;
}

/** The kill plans of this seed: every kind in turn (shuffled), each at its n-th occurrence. */
function killPlans(seed: number, count: number): KillPlan[] {
  const r = rng(seed, -1);
  const order = [...KINDS].sort(() => r() - 0.5);
  return Array.from({ length: count }, (_, i) => ({
    at: order[i % order.length]!,
    n: 1 + Math.floor(r() * 3),
    delayMs: 150 + Math.floor(r() * 1500),
  }));
}

interface Run {
  killed: boolean;
  done: boolean;
  /** Operations in the workload (from the run without a kill). */
  ops: number;
  out: string;
  point?: string;
}

function runChild(config: object, plan: KillPlan | null): Promise<Run> {
  const child = spawn(
    process.execPath,
    fixtureArgs("reliability-crash.mjs", JSON.stringify({ ...config, kill: plan ? { at: plan.at, n: plan.n } : null })),
    {
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  let out = "";
  let point: string | undefined;
  let buffer = "";
  const kill = (why: string) => {
    point ??= why;
    child.kill("SIGKILL");
  };
  // Nothing may hang for ever: a child that neither finishes nor reaches its point is a failure.
  const watchdog = setTimeout(() => kill("watchdog"), 120_000);
  child.stdout.on("data", (d: Buffer) => {
    out += d;
    buffer += d;
    let nl: number;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      if (line.startsWith("KILLPOINT ")) kill(line.slice(10));
      else if (line === "READY" && plan?.at === "random") setTimeout(() => kill("random"), plan.delayMs);
    }
  });
  child.stderr.on("data", (d: Buffer) => (out += d));
  return new Promise((resolve) =>
    child.on("exit", (code, signal) => {
      clearTimeout(watchdog);
      if (point === "watchdog") out += "\n(killed by the watchdog: no progress for 120 s)";
      const ops = Number(/DONE (\d+)/.exec(out)?.[1] ?? NaN);
      resolve({
        killed: signal === "SIGKILL" && point !== "watchdog",
        done: code === 0 && Number.isFinite(ops),
        ops,
        out: out.slice(-3000),
        point,
      });
    }),
  );
}

/** md5 of every row's to_jsonb text (minus `drop` keys), in key order. */
function checksumSql(table: string, key: string, drop: string[] = []): string {
  const row = drop.reduce((acc, k) => `(${acc} - '${k}')`, "to_jsonb(t)");
  return `SELECT md5(coalesce(string_agg(${row}::text, E'\\n' ORDER BY t.${key}), '')) AS h, count(*)::int AS n FROM ${table} AS t`;
}

async function localChecksums(db: Ominipg, drop: string[] = []): Promise<Record<string, { h: string; n: number }>> {
  const out: Record<string, { h: string; n: number }> = {};
  for (const [t, key] of Object.entries(TABLES))
    out[t] = (await db.query<{ h: string; n: number }>(checksumSql(t, key, drop))).rows[0]!;
  return out;
}

describe("reliability: SIGKILL at random points, then restart and sync", () => {
  let remote: TestDatabase;
  beforeAll(async () => {
    remote = await createTestDatabase();
    for (const s of [...SCHEMA, ...AUDIT]) await remote.sql.unsafe(s);
  });
  afterAll(async () => {
    await remote.drop();
  });

  it(
    `${KILLS} kills (seed ${SEED}): nothing lost, nothing rolled back, everything applied exactly once`,
    { timeout: 60_000 + KILLS * 30_000 },
    async () => {
      console.log(
        `reliability-crash: seed ${SEED}, ${KILLS} kills, at least ${OPS} operations (replay: OMINIPG_CRASH_SEED=${SEED} OMINIPG_CRASH_KILLS=${KILLS})`,
      );
      try {
        const dir = path.join(tempDir("ominipg-reliability-crash-"), "db");
        const config = {
          dir,
          syncUrl: remote.url,
          template: inject("ominipgPgliteTemplate"),
          seed: SEED,
          ops: OPS,
          syncEvery: SYNC_EVERY,
        };
        const plans = killPlans(SEED, KILLS);
        const points: Record<string, number> = {};
        let kills = 0;
        for (let i = 0; kills < KILLS; i++) {
          expect(i, "runs without reaching a kill point").toBeLessThan(KILLS * 3);
          const run = await runChild(config, plans[kills]!);
          if (run.killed) {
            kills++;
            points[run.point!] = (points[run.point!] ?? 0) + 1;
          } else if (run.done) {
            throw new Error(
              `the workload finished before reaching kill point ${JSON.stringify(plans[kills])}:\n${run.out}`,
            );
          } else
            throw new Error(
              `the child failed without being killed (kill plan ${JSON.stringify(plans[kills])}):\n${run.out}`,
            );
        }
        console.log(`reliability-crash: seed ${SEED}: ${kills} kills at ${JSON.stringify(points)}`);
        expect(kills).toBe(KILLS);
        for (const kind of KINDS)
          expect(points[kind] ?? 0, `kills at ${kind}`).toBeGreaterThan(KILLS >= KINDS.length ? 0 : -1);

        // The last run: no kill; it finishes the workload and syncs.
        const last = await runChild(config, null);
        expect(last.done, last.out).toBe(true);
        const ops = last.ops;

        // Restart once more in this process: a final sync pushes nothing new, and both sides agree.
        const db = await Ominipg.connect({ url: dir, syncUrl: remote.url, schemaSQL: SCHEMA });
        try {
          expect(await db.sync()).toMatchObject({ pushed: 0, rejected: 0 });
          expect((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM _sync_queue`)).rows[0]!.n).toBe(0);
          expect((await remote.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM _ominipg_ledger`)[0]!.n).toBe(0);
          const local = await localChecksums(db);
          for (const [t, key] of Object.entries(TABLES)) {
            const [r] = await remote.sql.unsafe<{ h: string; n: number }[]>(checksumSql(t, key));
            expect({ table: t, ...r }, `remote ${t} equals local ${t}`).toEqual({ table: t, ...local[t] });
          }
          expect((await db.verify()).ok).toBe(true);

          // Nothing committed lost, nothing rolled back kept: the same state as a run without kills.
          const reference = await Ominipg.connect({ schemaSQL: SCHEMA });
          try {
            for (let op = 0; op < ops; op++) await runOp(reference, SEED, op);
            expect(await localChecksums(db, ["stamp"]), "local state equals the run without kills").toEqual(
              await localChecksums(reference, ["stamp"]),
            );
            const journal = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM journal`)).rows[0]!.n;
            expect(journal).toBeGreaterThan(ops / 2);
          } finally {
            await reference.close();
          }
          for (const q of [
            `SELECT count(*)::int AS n FROM items WHERE note = '${ROLLED_BACK}' OR id >= 900000 OR val = -1`,
            `SELECT count(*)::int AS n FROM journal WHERE op >= 900000 OR kind = 'rollback'`,
          ]) {
            expect((await db.query<{ n: number }>(q)).rows[0]!.n, `local: ${q}`).toBe(0);
            expect((await remote.sql.unsafe<{ n: number }[]>(q))[0]!.n, `remote: ${q}`).toBe(0);
          }
        } finally {
          await db.close();
        }

        // Exactly once: no row version was written twice to the remote, and none rolled back ever arrived.
        const twice =
          await remote.sql`SELECT tbl, stamp, count(*)::int AS n FROM audit WHERE op IN ('I', 'U') GROUP BY 1, 2 HAVING count(*) > 1 ORDER BY 1, 2 LIMIT 10`;
        expect(twice, "row versions written twice to the remote").toEqual([]);
        expect(await remote.sql`SELECT count(*)::int AS n FROM audit WHERE note = ${ROLLED_BACK}`).toEqual([{ n: 0 }]);
        expect(
          (
            await remote.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM audit WHERE tbl = 'journal' AND op = 'I'`
          )[0]!.n,
        ).toBe((await remote.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM journal`)[0]!.n);
      } catch (err) {
        const e = err as Error;
        e.message = `[reliability-crash seed ${SEED}, ${KILLS} kills: replay with OMINIPG_CRASH_SEED=${SEED} OMINIPG_CRASH_KILLS=${KILLS}] ${e.message}`;
        console.error(e.message);
        throw e;
      }
    },
  );
});
