/** Remote URL helpers: every message Ominipg prints goes through `redact` so passwords never leak. */
import { checkServerIdentity, type ConnectionOptions } from "node:tls";

const URL_IN_TEXT = /(postgres(?:ql)?:\/\/)([^\s:@/]*)(?::([^\s@/]*))?@/gi;
const PASSWORD_PARAM = /([?&]password=)[^&#\s]*/gi;

/**
 * Replace every password in `text` with `***`: the user-info password of every postgres:// URL, every
 * `password=` URL parameter, and every secret given (see secretsOf: the forms a driver message may quote).
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text
    .replace(URL_IN_TEXT, (_m, scheme: string, user: string, pass: string | undefined) =>
      pass === undefined ? `${scheme}${user}@` : `${scheme}${user}:***@`,
    )
    .replace(PASSWORD_PARAM, "$1***");
  for (const secret of secrets) if (secret.length >= 3) out = out.split(secret).join("***");
  return out;
}

/**
 * Every form in which the password of a postgres:// URL (user info or `password=` parameter, and the
 * PGPASSWORD the driver falls back to) may appear in a message: as written and decoded.
 */
export function secretsOf(url: string, env: Readonly<Record<string, string | undefined>>): string[] {
  const out = new Set<string>();
  const add = (raw: string | null | undefined) => {
    if (!raw) return;
    out.add(raw);
    try {
      const decoded = decodeURIComponent(raw);
      out.add(decoded);
      out.add(encodeURIComponent(decoded));
    } catch {
      // not valid percent-encoding: the raw form is all there is
    }
  };
  const parts = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)@/i.exec(url);
  if (parts) add(parts[1]!.slice(parts[1]!.indexOf(":") + 1 || parts[1]!.length));
  for (const m of url.matchAll(/[?&]password=([^&#]*)/gi)) add(m[1]);
  add(env.PGPASSWORD);
  return [...out].filter((s) => s.length > 0);
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

const MUST_ENCODE =
  "characters such as @ : / ? # % or spaces in the user name or password must be percent-encoded, e.g. with encodeURIComponent()";

/**
 * Throws if `url` is not a postgres:// URL that libpq and postgres.js read the same way, with a message that
 * does not quote it (it holds the password; so does the `input` of the TypeError that `new URL()` throws,
 * which is therefore not kept). Refused: white space and control characters, a `#`, a `%` not followed by
 * two hex digits, and an `@` anywhere but between the user info and the host: all of them mean a password
 * or user name that was not percent-encoded, which the two would split differently (and a message could
 * then show part of the password).
 */
export function checkUrl(url: string): void {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  if (/[\s\x00-\x1f\x7f#]/.test(url)) throw new Error(`it is not a valid URL (${MUST_ENCODE})`);
  if (/%(?![0-9a-f]{2})/i.test(url)) throw new Error(`it is not a valid URL (${MUST_ENCODE})`);
  const afterScheme = url.slice(url.indexOf("://") + 3);
  const authorityEnd = afterScheme.search(/[/?]/);
  const authority = authorityEnd < 0 ? afterScheme : afterScheme.slice(0, authorityEnd);
  const rest = authorityEnd < 0 ? "" : afterScheme.slice(authorityEnd);
  if ((authority.match(/@/g)?.length ?? 0) > 1 || rest.includes("@")) {
    throw new Error(`it is not a valid URL (${MUST_ENCODE})`);
  }
  // postgres.js cannot connect to one: it would fail at every sync, as a host name "[".
  if (authority.slice(authority.indexOf("@") + 1).startsWith("["))
    throw new Error(
      "it is not a valid URL here: an IPv6 address in brackets, which the driver cannot reach (use a host name)",
    );
  // postgres.js takes several hosts ("h1:5432,h2:5432") and parses the URL with the first one.
  const probe = url.replace(
    /^([a-z]+:\/\/(?:[^/?#]*@)?)([^/?#]*)/i,
    (_m, head: string, hosts: string) => head + (hosts.split(",")[0] ?? ""),
  );
  try {
    new URL(probe);
  } catch {
    throw new Error(`it is not a valid URL (${MUST_ENCODE})`);
  }
}

/**
 * libpq's `user=` and `password=` URL parameters as postgres.js options (postgres.js would send them to the
 * server as run-time parameters), and the URL without them.
 */
export function credentialParams(url: string): { url: string; user?: string; pass?: string } {
  const query = url.indexOf("?");
  if (query < 0) return { url };
  const params = new URLSearchParams(url.slice(query + 1));
  const user = params.get("user") ?? undefined;
  const pass = params.get("password") ?? undefined;
  if (user === undefined && pass === undefined) return { url };
  params.delete("user");
  params.delete("password");
  const left = params.toString();
  return {
    url: url.slice(0, query) + (left ? `?${left}` : ""),
    ...(user === undefined ? {} : { user }),
    ...(pass === undefined ? {} : { pass }),
  };
}
