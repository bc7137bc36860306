import type { TableInfo } from "../core/table.js";
import { clientIdOf } from "../log/tables.js";
import type { FeedAgent } from "../remote/feed-agent.js";
import type { Remote } from "../remote/remote.js";
import type { PullContext } from "./context.js";
import { REGISTER_SQL, UNREGISTER_SQL } from "./feed-sql.js";
import { lsnValue } from "../core/feed.js";
import { readCursor, type FeedView } from "./feed-view.js";

/** What each agent (one per client) last registered, and when. */
const registered = new WeakMap<FeedAgent, { position: string; at: number }>();

/** A registration is refreshed this often even when the position did not move (drainers forget silent readers). */
const REFRESH_MS = 10 * 60_000;

/**
 * Tell drainers how far this client has read the feed (the lowest cursor of its tables in this epoch), as its
 * own identity's row of `_ominipg_feed_clients`, so that rows every reader has passed can be trimmed. Written
 * only when the position moved or every REFRESH_MS; a failure (no grant) is a warning, nothing else depends on it.
 */
export async function registerReader(
  ctx: PullContext,
  remote: Remote,
  agent: FeedAgent,
  view: FeedView,
  tables: TableInfo[],
): Promise<void> {
  let lowest: string | undefined;
  for (const t of tables) {
    const c = await readCursor(ctx, t);
    if (c?.epoch !== view.epoch) continue;
    if (lowest === undefined || lsnValue(c.lsn) < lsnValue(lowest)) lowest = c.lsn;
  }
  if (lowest === undefined) return;
  const position = `${view.epoch}/${lowest}`;
  const last = registered.get(agent);
  if (last?.position === position && Date.now() - last.at < REFRESH_MS) return;
  const clientId = await ctx.local(clientIdOf);
  try {
    await remote.session((sql) => sql.unsafe(REGISTER_SQL, [clientId, view.epoch, lowest]));
    registered.set(agent, { position, at: Date.now() });
  } catch (err) {
    agent.warn({
      code: "FEED_REGISTER_FAILED",
      message: `recording this client's position in the change feed failed (the feed keeps rows for the retention instead): ${remote.redact((err as Error)?.message ?? String(err))}`,
    });
  }
}

/** Forget this client's position in the feed (unregister()); nothing to do where the feed was never set up. */
export async function unregisterReader(remote: Remote, clientId: string): Promise<void> {
  await remote.session(async (sql) => {
    const [r] = await sql.unsafe<{ found: boolean }[]>(
      `SELECT coalesce(has_table_privilege(to_regclass('public._ominipg_feed_clients'), 'DELETE'), false) AS found`,
    );
    if (r?.found) await sql.unsafe(UNREGISTER_SQL, [clientId]);
  });
}
