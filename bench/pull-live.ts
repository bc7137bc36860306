/**
 * Section 7, live latency: a client with `sync: { pull: "live" }` (its role is the server's superuser, so it
 * drains the change feed itself: every 500 ms while idle it drains, reads the feed's position and pulls when it
 * moved, src/feed.ts). After its initial pull, `updates` times: a pause of 0-500 ms (a seeded random draw, so
 * that commits land at every phase of the client's polling), one remote UPDATE of a random row's name in its
 * own transaction (`synchronous_commit = on`, PostgreSQL's default: the server's is off for the push section, and
 * the feed decodes flushed WAL only), then the local row is read every 5 ms until it shows the new name. Latency = from just
 * before the UPDATE is sent to the first local read that shows it. Every pull the client makes meanwhile must
 * go through the feed; the client is checked against the remote at the end.
 */
import type postgres from "postgres";
import { Ominipg, type PullResult } from "../src/index.js";
import { now } from "./lib/stats.js";
import { expectSameRows, expectStrategy, PULL_DDL, PULL_TABLE, remoteWrite } from "./lib/pull-items.js";

export interface LiveResult {
  /** Remote commit to local visibility, one per update (ms). */
  latenciesMs: number[];
  /** Pulls the live client made during the measurement (all by the feed). */
  pulls: number;
}

const POLL_MS = 5;
const GIVE_UP_MS = 15_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A small deterministic PRNG (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runLive(
  url: string,
  remote: postgres.Sql,
  cfg: { updates: number; rows: number; template: Blob },
): Promise<LiveResult> {
  const db = await Ominipg.connect({
    loadDataDir: cfg.template,
    syncUrl: url,
    schemaSQL: [PULL_DDL],
    sync: { pull: "live" },
  });
  db.on("error", () => {});
  const pulls: PullResult[] = [];
  let counting = false;
  db.on("pull:end", (r) => {
    if (counting) pulls.push(r);
  });
  const latenciesMs: number[] = [];
  try {
    await db.pull(); // joins the background initial pull ("live" starts one), or runs it
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pull_items`);
    if (rows[0]!.n !== cfg.rows) throw new Error(`the live client holds ${rows[0]!.n} rows, expected ${cfg.rows}`);
    counting = true;
    const rnd = random(15);
    for (let i = 0; i < cfg.updates; i++) {
      await sleep(Math.floor(rnd() * 500));
      const id = 1 + Math.floor(rnd() * cfg.rows);
      const name = `live ${i} ${rnd().toString(36).slice(2)}`;
      const start = now();
      await remoteWrite(remote, `UPDATE pull_items SET name = $1 WHERE id = $2`, [name, id]);
      for (;;) {
        const local = await db.query<{ name: string }>(`SELECT name FROM pull_items WHERE id = $1`, [id]);
        if (local.rows[0]?.name === name) break;
        if (now() - start > GIVE_UP_MS)
          throw new Error(
            `live: a remote update did not show locally within ${GIVE_UP_MS / 1000} s; pulls meanwhile: ` +
              JSON.stringify(pulls.map((p) => ({ table: p.tables[PULL_TABLE], feed: p.feed }))),
          );
        await sleep(POLL_MS);
      }
      latenciesMs.push(now() - start);
    }
    counting = false;
    for (const p of pulls) expectStrategy(p, "feed", "a live pull");
    await expectSameRows(db, remote);
  } finally {
    await db.close();
  }
  return { latenciesMs, pulls: pulls.length };
}
