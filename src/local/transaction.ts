import type { Driver } from "../core/driver.js";
import { SchemaError } from "../core/errors.js";
import { LOCAL_SETTINGS } from "../core/settings.js";

/** Run `fn` in a local transaction on the internal driver: committed if it resolves, rolled back if it throws. */
export async function inLocalTransaction<T>(d: Driver, fn: () => Promise<T>, settings = ""): Promise<T> {
  await d.exec(settings ? `BEGIN; ${settings}` : "BEGIN");
  try {
    const value = await fn();
    await d.exec("COMMIT");
    return value;
  } catch (err) {
    if (d.txStatus !== "idle") await d.exec("ROLLBACK").catch(() => {});
    throw err;
  }
}

/**
 * A local transaction for rows that come from the remote (pulled rows, settled conflicts): canonical value
 * text, and the replica role, so FK checks, cascades and user triggers do not fire for them. The internal
 * driver is one capture never sees: nothing written here is queued for a push.
 */
export function inReplicaTransaction<T>(d: Driver, fn: () => Promise<T>): Promise<T> {
  return inLocalTransaction(d, fn, LOCAL_SETTINGS);
}

/** Run `schemaSQL` in one transaction: all of it applies, or none of it and a SchemaError names the statement. */
export async function runSchema(
  driver: Driver,
  statements: readonly string[],
  side: "local" | "remote",
): Promise<void> {
  if (statements.length === 0) return;
  await inLocalTransaction(driver, async () => {
    for (let i = 0; i < statements.length; i++) {
      await driver.exec(statements[i]!).catch((err: unknown) => {
        throw new SchemaError(i, side, statements[i]!, err);
      });
    }
  });
}
