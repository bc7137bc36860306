// Every URL form libpq accepts keeps its password out of every output path: errors, events, status(), the
// CLI and anything written to stdout/stderr. URLs whose user info holds unencoded reserved characters are
// refused at connect() with CONFIG_INVALID before anything can print them.
import fs from "node:fs";
import path from "node:path";
import util from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg } from "../src/index.js";
import { runCli } from "../src/cli/run.js";
import { createTestDatabase, tempDir, unreachableUrl, type TestDatabase } from "./harness/index.js";
import { captureOutput, setEnv } from "./process-helpers.js";

/** A password of its own per form (so a leak is traced to its form), never the server's real one. */
const secret = (i: number) => `Corpus${i}Pw`;

function renderings(value: unknown): string[] {
  const out = [String(value), util.inspect(value, { depth: 20, showHidden: true })];
  try {
    out.push(JSON.stringify(value) ?? "");
  } catch {
    // circular: inspect covers it
  }
  if (value instanceof Error) out.push(value.stack ?? "");
  return out;
}

function expectNoSecret(what: string, value: unknown, secretText: string): void {
  for (const text of renderings(value))
    expect(text.includes(secretText), `${what} shows ${secretText}:\n${text.slice(0, 1500)}`).toBe(false);
}

/**
 * The CLI run in this process (runCli: what the executable runs, without a process start per call; the
 * executable's own output is checked in security-redaction.test.ts): everything it prints, stdout and stderr.
 */
async function cli(args: string[], env: Record<string, string> = {}): Promise<string> {
  const before = setEnv(env);
  try {
    return (await captureOutput(() => runCli(args))).output;
  } finally {
    setEnv(before);
  }
}

describe("security: a corpus of URL forms", () => {
  let remote: TestDatabase;
  let accepted: { form: string; url: string; secret: string; env?: Record<string, string> }[];
  let refused: { form: string; url: string; secret: string }[];
  /** An Ominipg data directory for the CLI: in any other directory a command stops before it reads the URL. */
  let dir: string;
  beforeAll(async () => {
    remote = await createTestDatabase();
    dir = path.join(tempDir("ominipg-corpus-"), "db");
    // Opened with a remote once: `ominipg status --remote` opens it with the remote given (a local-only one, without).
    await (await Ominipg.connect({ url: dir, syncUrl: remote.url })).close();
    const u = new URL(remote.url);
    const [host, port, db] = [u.hostname, u.port, u.pathname.slice(1)];
    const down = new URL(unreachableUrl()).port;
    const s = secret;
    accepted = [
      { form: "plain", url: `postgres://postgres:${s(1)}@${host}:${port}/${db}` },
      { form: "postgresql scheme", url: `postgresql://postgres:${s(2)}@localhost:${port}/${db}` },
      { form: "upper-case scheme", url: `POSTGRES://postgres:${s(3)}@${host}:${port}/${db}` },
      {
        form: "percent-encoded reserved characters",
        url: `postgres://postgres:${encodeURIComponent(`${s(4)}@:/?#% x`)}@${host}:${port}/${db}`,
        secret: s(4),
      },
      {
        form: "percent-encoded user name",
        url: `postgres://${encodeURIComponent("postgres")}:${s(5)}@${host}:${port}/${db}`,
      },
      { form: "password= parameter", url: `postgres://postgres@${host}:${port}/${db}?password=${s(6)}` },
      {
        form: "user= and password= parameters",
        url: `postgres://${host}:${port}/${db}?user=postgres&password=${s(7)}`,
      },
      { form: "several hosts", url: `postgres://postgres:${s(8)}@${host}:${down},${host}:${port}/${db}` },
      { form: "sslmode=disable", url: `postgres://postgres:${s(9)}@${host}:${port}/${db}?sslmode=disable` },
      { form: "unencoded colon in the password", url: `postgres://postgres:${s(10)}:x@${host}:${port}/${db}` },
      {
        form: "percent-encoded non-ASCII",
        url: `postgres://postgres:${encodeURIComponent(`${s(11)}ä€😀`)}@${host}:${port}/${db}`,
        secret: s(11),
      },
      { form: "empty user name", url: `postgres://:${s(12)}@${host}:${port}/${db}` },
      { form: "no database", url: `postgres://postgres:${s(13)}@${host}:${port}` },
      {
        form: "other parameters around password=",
        url: `postgres://postgres@${host}:${port}/${db}?application_name=corpus&password=${s(14)}&connect_timeout=5`,
      },
      { form: "PGPASSWORD", url: `postgres://postgres@${host}:${port}/${db}`, env: { PGPASSWORD: s(15) } },
      {
        form: "unix socket directory as host",
        url: `postgres://postgres:${s(16)}@${encodeURIComponent("/tmp/ominipg-no-such-dir")}/${db}`,
      },
      { form: "unreachable port", url: `postgres://postgres:${s(17)}@${host}:${down}/${db}` },
    ].map((f, i) => ({ secret: secret(i + 1), ...f }));
    refused = [
      { form: "unencoded space", url: `postgres://postgres:a b${s(21)}@${host}:${port}/${db}` },
      { form: "unencoded @", url: `postgres://postgres:a@${s(22)}@${host}:${port}/${db}` },
      { form: "unencoded #", url: `postgres://postgres:a#${s(23)}@${host}:${port}/${db}` },
      { form: "unencoded /", url: `postgres://postgres:a/${s(24)}@${host}:${port}/${db}` },
      { form: "unencoded ?", url: `postgres://postgres:a?${s(25)}@${host}:${port}/${db}` },
      { form: "bad percent escape", url: `postgres://postgres:a%zz${s(26)}@${host}:${port}/${db}` },
      { form: "newline", url: `postgres://postgres:a\n${s(27)}@${host}:${port}/${db}` },
      { form: "space in password=", url: `postgres://postgres@${host}:${port}/${db}?password=a b${s(28)}` },
      { form: "port out of range", url: `postgres://postgres:${s(29)}@${host}:99999/${db}` },
      // postgres.js cannot connect to one (it looks up a host named "["): refused, not failing at every sync.
      { form: "IPv6 address in brackets", url: `postgres://postgres:${s(30)}@[::1]:${port}/${db}` },
    ].map((f, i) => ({ ...f, secret: secret(i + 21) }));
  });
  afterAll(async () => {
    await remote.drop();
    fs.rmSync(path.dirname(dir), { recursive: true, force: true }); // made in beforeAll: tempDir leaves it to us
  });

  it("refuses URLs with unencoded reserved characters with CONFIG_INVALID (connect(), feed(), the CLI), without showing them", async () => {
    for (const f of refused) {
      for (const option of ["syncUrl", "url"] as const) {
        const err = await Ominipg.connect({ [option]: f.url }).then(
          async (db) => (await db.close(), new Error(`accepted ${f.form}`)),
          (e: unknown) => e,
        );
        expect(err, `${option}: ${f.form}`).toMatchObject({ code: "CONFIG_INVALID" });
        expectNoSecret(`connect({ ${option} }) with ${f.form}`, err, f.secret);
      }
      const drainer = await Ominipg.feed(f.url).then(
        async (d) => (await d.stop(), new Error(`feed() accepted ${f.form}`)),
        (e: unknown) => e,
      );
      expect(drainer, `feed(): ${f.form}`).toMatchObject({ code: "CONFIG_INVALID" });
      expectNoSecret(`feed() with ${f.form}`, drainer, f.secret);
      // Every command checks --remote as connect() does: also those that open it themselves (setup, feed --drop).
      for (const command of [["status", dir], ["setup"], ["feed", "--drop"]]) {
        const output = await cli([...command, "--remote", f.url, "--verbose"]);
        expect(output, `ominipg ${command[0]} refuses ${f.form}`).toMatch(/^ominipg: --remote: it is not a valid URL/m);
        expectNoSecret(`the CLI with ${f.form}`, output, f.secret);
      }
    }
  });

  it("for every accepted form, no failure, event, status() or output shows the password", async () => {
    const writes: string[] = [];
    const [out, err] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
    process.stdout.write = ((chunk: unknown, ...rest: unknown[]) => (
      writes.push(String(chunk)),
      out(chunk as string, ...(rest as []))
    )) as typeof process.stdout.write;
    process.stderr.write = ((chunk: unknown, ...rest: unknown[]) => (
      writes.push(String(chunk)),
      err(chunk as string, ...(rest as []))
    )) as typeof process.stderr.write;
    const saved = process.env.PGPASSWORD;
    try {
      for (const f of accepted) {
        if (f.env?.PGPASSWORD) process.env.PGPASSWORD = f.env.PGPASSWORD;
        else delete process.env.PGPASSWORD;
        const events: unknown[] = [];
        const db = await Ominipg.connect({
          syncUrl: f.url,
          sync: { retry: { attempts: 1 } },
        });
        db.on("error", (e) => events.push(e));
        try {
          // The test server trusts local connections: some forms connect, some fail. Either way, nothing shows it.
          const outcomes = await Promise.all(
            [db.sync(), db.pull(), db.verify()].map((p) => p.catch((e: unknown) => e)),
          );
          for (const outcome of outcomes) expectNoSecret(`sync/pull/verify with ${f.form}`, outcome, f.secret);
          const status = await db.status();
          expect(status.remote, f.form).not.toBeNull();
          expectNoSecret(`status() with ${f.form}`, status, f.secret);
          for (const e of events) expectNoSecret(`an error event with ${f.form}`, e, f.secret);
        } finally {
          await db.close();
        }
        for (const [args, reached] of [
          [["status", dir, "--remote", f.url, "--verbose"], /^remote {2,}postgres/im],
          [["sync", dir, "--verbose"], /^syncing /m],
        ] as const) {
          const output = await cli([...args], { OMINIPG_REMOTE_URL: f.url, ...(f.env ?? {}) });
          expect(output, `ominipg ${args[0]} with ${f.form} got as far as the remote`).toMatch(reached);
          expectNoSecret(`ominipg ${args[0]} with ${f.form}`, output, f.secret);
        }
      }
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
      if (saved === undefined) delete process.env.PGPASSWORD;
      else process.env.PGPASSWORD = saved;
    }
    expectNoSecret("stdout/stderr", writes.join(""), "Corpus");
  }, 300_000);

  it("several hosts: when the first cannot be reached, the next one is used (and a sync never hangs)", async () => {
    const u = new URL(remote.url);
    const down = `${u.hostname}:${new URL(unreachableUrl()).port}`;
    const url = remote.url.replace(`@${u.host}/`, `@${down},${u.host}/`);
    expect(url).not.toBe(remote.url);
    const db = await Ominipg.connect({
      syncUrl: url,
      schemaSQL: [`CREATE TABLE IF NOT EXISTS corpus (id int PRIMARY KEY)`],
      sync: { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 10 } },
    });
    try {
      await db.query(`INSERT INTO corpus VALUES (2) ON CONFLICT DO NOTHING`);
      expect((await db.sync()).pushed).toBe(1);
      expect(await remote.sql`SELECT id FROM corpus WHERE id = 2`).toEqual([{ id: 2 }]);
    } finally {
      await db.close();
    }
  });
});

describe("a url option given as an object", () => {
  it("is refused with CONFIG_INVALID without showing what it holds (a URL object, a connection string, a password)", async () => {
    const secret = "Obj5ecretPw";
    for (const url of [
      new URL(`postgres://app:${secret}@127.0.0.1:1/db`),
      { connectionString: `postgres://app:${secret}@127.0.0.1:1/db` },
      { host: "127.0.0.1", user: "app", password: secret },
    ]) {
      const err = await Ominipg.connect({ url: url as unknown as string }).then(
        async (db) => (await db.close(), new Error("accepted")),
        (e: unknown) => e as Error,
      );
      expect(err).toMatchObject({ code: "CONFIG_INVALID" });
      expectNoSecret("connect() with a url object", err, secret);
    }
  });
});
