import fs from "node:fs";
import { checkRemoteUrl, resolveSyncOptions } from "./core/options.js";
import { FeedLink } from "./feed.js";
import { ledgerCount } from "./push/ledger.js";
import { Remote } from "./remote/remote.js";
import type { Status } from "./types.js";

/** What status() says of the remote. */
export interface RemoteStatus {
  remote: NonNullable<Status["remote"]>;
  feed: Status["feed"];
}

/**
 * Whether the remote answers (within 5 s), this client's rows in its ledger, and the change feed as this client
 * sees it. Reads only: nothing is set up on either side.
 */
export async function remoteStatus(
  remote: Remote,
  feed: FeedLink | undefined,
  clientId: string | null,
): Promise<RemoteStatus> {
  const url = remote.redact(remote.url);
  const down = (error: string) => ({ url, reachable: false as const, error });
  const answer = await Promise.race([
    // A client without an id has no ledger rows, but the remote is asked all the same.
    remote
      .session((sql) => (clientId ? ledgerCount(sql, clientId) : sql.unsafe(`SELECT 1`).then(() => 0)))
      .then((ledgerRows) => ({ url, reachable: true, ledgerRows })),
    new Promise<ReturnType<typeof down>>((resolve) =>
      setTimeout(() => resolve(down("no answer within 5 s")), 5000).unref(),
    ),
  ]).catch((err: unknown) => down(remote.describe(err)));
  return { remote: answer, feed: feed && answer.reachable ? await feed.status() : null };
}

/**
 * remoteStatus() of `url` for a database opened without it (`ominipg status --remote`): opening a database with
 * a remote makes it a synced one, which a database never opened with a remote must not become by being looked at.
 */
export async function probeRemote(url: string, clientId: string | null): Promise<RemoteStatus> {
  checkRemoteUrl("syncUrl", url, (file) => fs.readFileSync(file)); // as connect() checks it
  const { retry, feed } = resolveSyncOptions();
  const remote = new Remote(url, [], false, 1, retry, {});
  try {
    return await remoteStatus(remote, new FeedLink(remote, feed, () => {}), clientId);
  } finally {
    await remote.close();
  }
}
