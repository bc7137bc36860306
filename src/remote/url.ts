/** Remote URL helpers: every message Ominipg prints goes through `redact` so passwords never leak. */

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
