import type { Driver } from "../core/driver.js";

/** Local database access for Ominipg's own work (sync, pull): never inside a user's open transaction. */
export interface LocalAccess {
  run<T>(fn: (driver: Driver) => Promise<T>): Promise<T>;
}
