// TLS to the remote follows the URL's sslmode, as libpq reads it: require (encrypted, unverified),
// verify-ca and verify-full with sslrootcert (a CA file), disable. Against the test server's certificate
// (signed by a throw-away CA for "localhost", tests/harness/tls.ts): verify-full through 127.0.0.1 (a name
// the certificate does not carry) and verify-full with the wrong CA fail closed, with a clear error, and
// push nothing. Skipped (with the reason printed) where the harness could not turn TLS on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg, SyncError } from "../src/index.js";
import { createTestDatabase, tlsInfo, type TestDatabase } from "./harness/index.js";

const SCHEMA = [`CREATE TABLE IF NOT EXISTS secrets (id int PRIMARY KEY, body text)`];
const tls = tlsInfo();
if ("skip" in tls) console.log(`security-tls: skipped: ${tls.skip}`);

describe.skipIf("skip" in tls)("security: TLS follows sslmode", () => {
  const info = tls as { caFile: string; wrongCaFile: string; serverName: string };
  let remote: TestDatabase;
  let n = 0;
  beforeAll(async () => {
    remote = await createTestDatabase();
    for (const s of SCHEMA) await remote.sql.unsafe(s);
  });
  afterAll(async () => {
    await remote.drop();
  });

  /** The test database's URL with `host` and TLS parameters, and an application_name to find its sessions. */
  function url(host: string, params: Record<string, string>): { url: string; app: string } {
    const u = new URL(remote.url);
    u.hostname = host;
    const app = `ominipg_tls_${++n}`;
    for (const [k, v] of Object.entries({ ...params, application_name: app })) u.searchParams.set(k, v);
    return { url: u.href, app };
  }

  /** Whether the sessions of `app` on the server are encrypted (one answer per session). */
  async function encrypted(app: string): Promise<boolean[]> {
    const rows = await remote.sql<
      { ssl: boolean }[]
    >`SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = ${app}`;
    return rows.map((r) => r.ssl);
  }

  async function pushOne(syncUrl: string, id: number): Promise<{ db: Ominipg; result: unknown }> {
    const db = await Ominipg.connect({
      syncUrl,
      schemaSQL: SCHEMA,
      sync: { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 } },
    });
    db.on("error", () => {});
    await db.query(`INSERT INTO secrets VALUES ($1, 'over TLS?')`, [id]);
    const result = await db.sync().catch((e: unknown) => e);
    return { db, result };
  }

  const ok: [string, string, Record<string, string>, boolean][] = [
    ["require: encrypted, certificate not checked", "127.0.0.1", { sslmode: "require" }, true],
    [
      "verify-ca with the CA: encrypted, through an address the certificate does not name",
      "127.0.0.1",
      { sslmode: "verify-ca", sslrootcert: info.caFile },
      true,
    ],
    [
      "verify-full with the CA and the certificate's host name",
      info.serverName,
      { sslmode: "verify-full", sslrootcert: info.caFile },
      true,
    ],
    [
      "require with sslrootcert verifies the chain (as libpq does)",
      "127.0.0.1",
      { sslmode: "require", sslrootcert: info.caFile },
      true,
    ],
    ["disable: no TLS", "127.0.0.1", { sslmode: "disable" }, false],
  ];
  for (const [title, host, params, tlsOn] of ok) {
    it(title, async () => {
      const target = url(host, params);
      const id = n;
      const { db, result } = await pushOne(target.url, id);
      try {
        expect(result).toMatchObject({ pushed: 1, rejected: 0 });
        const sessions = await encrypted(target.app);
        expect(sessions.length).toBeGreaterThan(0);
        expect(sessions.every((s) => s === tlsOn)).toBe(true);
        await remote.sql`DELETE FROM secrets WHERE id <> ${id}`; // other tests' rows
        expect((await db.verify()).ok).toBe(true); // verify() goes through the same TLS settings
      } finally {
        await db.close();
      }
      expect(await remote.sql`SELECT body FROM secrets WHERE id = ${id}`).toEqual([{ body: "over TLS?" }]);
    });
  }

  const refused: [string, string, Record<string, string>, RegExp][] = [
    [
      "verify-full with the wrong CA fails closed",
      info.serverName,
      { sslmode: "verify-full", sslrootcert: info.wrongCaFile },
      /certificate/i,
    ],
    [
      "verify-full through a host name the certificate does not carry fails closed",
      "127.0.0.1",
      { sslmode: "verify-full", sslrootcert: info.caFile },
      /certificate|altnames|host/i,
    ],
    [
      "verify-ca with the wrong CA fails closed",
      "127.0.0.1",
      { sslmode: "verify-ca", sslrootcert: info.wrongCaFile },
      /certificate/i,
    ],
    [
      "verify-full without sslrootcert (system CAs) fails closed",
      info.serverName,
      { sslmode: "verify-full" },
      /certificate/i,
    ],
  ];
  for (const [title, host, params, why] of refused) {
    it(title, async () => {
      const target = url(host, params);
      const id = n;
      const started = performance.now();
      const { db, result } = await pushOne(target.url, id);
      try {
        expect(result).toBeInstanceOf(SyncError);
        const err = result as SyncError;
        expect(err.message).toMatch(why);
        expect(err.message).toMatch(/TLS|SSL|certificate/i);
        expect(err.retryable).toBe(false); // retrying cannot fix a certificate
        expect(err.message).not.toContain(new URL(remote.url).password);
        expect(performance.now() - started).toBeLessThan(20_000);
        expect(await encrypted(target.app)).toEqual([]); // never got a session
        expect((await db.status()).pending).toEqual([{ table: "public.secrets", priority: 0, count: 1 }]);
      } finally {
        await db.close();
      }
      expect(await remote.sql`SELECT body FROM secrets WHERE id = ${id}`).toEqual([]);
    });
  }

  it("a bad sslmode or an unreadable sslrootcert is a ConfigError at connect()", async () => {
    await expect(
      Ominipg.connect({ syncUrl: url("127.0.0.1", { sslmode: "verify-everything" }).url }),
    ).rejects.toMatchObject({ code: "CONFIG_INVALID", message: expect.stringMatching(/sslmode/) });
    await expect(
      Ominipg.connect({ syncUrl: url("127.0.0.1", { sslmode: "verify-full", sslrootcert: "/no/such/ca.crt" }).url }),
    ).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      message: expect.stringMatching(/sslrootcert=\/no\/such\/ca\.crt cannot be read/),
    });
  });
});
