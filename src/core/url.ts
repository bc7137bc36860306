/** Remote URL helpers: every message Ominipg prints goes through `redact` so passwords never leak. */
import { checkServerIdentity, type ConnectionOptions } from "node:tls";

const URL_IN_TEXT = /(postgres(?:ql)?:\/\/)([^\s:@/]*)(?::([^\s@/]*))?@/gi;

/** Replace the password of every postgres:// URL inside `text` with `***`. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text.replace(URL_IN_TEXT, (_m, scheme: string, user: string, pass: string | undefined) =>
    pass === undefined ? `${scheme}${user}@` : `${scheme}${user}:***@`,
  );
  for (const secret of secrets) if (secret.length >= 3) out = out.split(secret).join("***");
  return out;
}

/** The password of a postgres:// URL (decoded), to scrub it from driver messages that quote it bare. */
export function passwordOf(url: string): string | undefined {
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

export function isPostgresUrl(url: string): boolean {
  return /^postgres(ql)?:\/\//i.test(url);
}

/** What postgres.js's `ssl` option takes. */
export type SslOption = false | "prefer" | "require" | ConnectionOptions;

const TLS_PARAMS = ["sslmode", "sslrootcert", "sslcert", "sslkey"];
const SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"];

/**
 * libpq's TLS settings of a URL (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`) as postgres.js's `ssl`
 * option, and the URL without them. postgres.js would pass `sslrootcert` to the server as a run-time
 * parameter (it reads no files), and Ominipg's own socket factory leaves it without the host name that
 * verify-full checks, so both are handled here. Without `sslmode`, `ssl` is undefined (postgres.js's
 * default: no TLS). As in libpq: `require` with `sslrootcert` verifies the chain (verify-ca);
 * `sslrootcert=system` means the system CAs and verify-full. Throws a ConfigError-ready `Error` for an
 * unknown mode or an unreadable file.
 */
export function tlsFromUrl(
  url: string,
  readFile: (path: string) => Buffer,
): { url: string; ssl: SslOption | undefined } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, ssl: undefined }; // not a single-host URL: postgres.js parses it itself
  }
  const get = (k: string) => parsed.searchParams.get(k) ?? undefined;
  if (!TLS_PARAMS.some((k) => parsed.searchParams.has(k))) return { url, ssl: undefined };
  const rootcert = get("sslrootcert");
  let mode = get("sslmode") ?? (rootcert === "system" ? "verify-full" : "prefer");
  if (!SSL_MODES.includes(mode)) throw new Error(`sslmode=${mode} is not one of ${SSL_MODES.join(", ")}`);
  if (mode === "require" && rootcert) mode = "verify-ca";
  for (const k of TLS_PARAMS) parsed.searchParams.delete(k);
  const stripped = parsed.href;
  const read = (param: string, path: string) => {
    try {
      return readFile(path);
    } catch (err) {
      throw new Error(`${param}=${path} cannot be read: ${(err as Error).message}`, { cause: err });
    }
  };
  if (mode === "disable") return { url: stripped, ssl: false };
  if (mode === "allow" || mode === "prefer") return { url: stripped, ssl: "prefer" };
  if (mode === "require") return { url: stripped, ssl: "require" };
  const host = parsed.hostname.replace(/^\[|\]$/g, "");
  const options: ConnectionOptions = { rejectUnauthorized: true };
  if (rootcert && rootcert !== "system") options.ca = read("sslrootcert", rootcert);
  const cert = get("sslcert");
  const key = get("sslkey");
  if (cert) options.cert = read("sslcert", cert);
  if (key) options.key = read("sslkey", key);
  if (mode === "verify-ca") {
    options.checkServerIdentity = () => undefined; // the chain is verified, the name is not
  } else {
    // The host name of the URL, whatever socket carries the connection.
    if (!/^[\d.]+$|:/.test(host)) options.servername = host;
    options.checkServerIdentity = (_name, peer) => checkServerIdentity(host, peer);
  }
  return { url: stripped, ssl: options };
}

/**
 * Throws if postgres.js could not parse `url`, with a message that does not quote it (it holds the
 * password; so does the `input` of the TypeError that `new URL()` throws, which is therefore not kept).
 */
export function checkUrl(url: string): void {
  // postgres.js takes several hosts ("h1:5432,h2:5432") and parses the URL with the first one.
  const probe = url.replace(
    /^([a-z]+:\/\/(?:[^/?#]*@)?)([^/?#]*)/i,
    (_m, head: string, hosts: string) => head + (hosts.split(",")[0] ?? ""),
  );
  try {
    new URL(probe);
  } catch {
    throw new Error(
      "it is not a valid URL (characters such as @ : / ? # % or spaces in the user name or password must be percent-encoded)",
    );
  }
}
