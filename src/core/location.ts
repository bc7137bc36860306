import path from "node:path";
import { fileURLToPath } from "node:url";
import { ConfigError } from "./errors.js";
import { isPostgresUrl } from "./url.js";

export type Location = { kind: "memory" } | { kind: "directory"; path: string } | { kind: "server"; url: string };

/** What a `url` option names: an in-memory PGlite, a PGlite data directory, or a PostgreSQL server. */
export function locate(url: string | undefined): Location {
  if (url === undefined || url === ":memory:" || url === "memory://") return { kind: "memory" };
  if (typeof url !== "string" || url.trim() === "")
    // Not quoted: an object may hold a password.
    throw new ConfigError(
      `url must be ":memory:", a directory path or a postgres:// URL, got ${typeof url === "string" ? "an empty string" : url === null ? "null" : typeof url}`,
    );
  if (isPostgresUrl(url)) return { kind: "server", url };
  if (url.startsWith("file://")) {
    try {
      return { kind: "directory", path: fileURLToPath(url) };
    } catch (cause) {
      throw new ConfigError(`url ${url} is not a valid file:// URL`, { cause });
    }
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) {
    throw new ConfigError(
      `url scheme of ${JSON.stringify(url.split("://")[0])} is not supported: use ":memory:", a directory path, file://, or postgres://`,
    );
  }
  return { kind: "directory", path: path.resolve(url) };
}
