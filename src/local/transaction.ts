import type { Driver } from "../driver.js";
import { LOCAL_SETTINGS } from "../pull/sql.js";

/**
 * A local transaction for rows that come from the remote (pulled rows, settled conflicts): canonical value
 * text, and the replica role, so FK checks, cascades and user triggers do not fire for them. Run through the
 * internal driver, which capture never sees: nothing written here is queued for a push.
 */
export async function inReplicaTransaction<T>(d: Driver, fn: () => Promise<T>): Promise<T> {
  await d.exec(`BEGIN; ${LOCAL_SETTINGS}`);
  try {
    const value = await fn();
    await d.exec("COMMIT");
    return value;
  } catch (err) {
    if (d.txStatus !== "idle") await d.exec("ROLLBACK").catch(() => {});
    throw err;
  }
}
