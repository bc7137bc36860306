// Credentials never leak: the password of url/syncUrl appears in no error message (nor anywhere in the
// error object: cause, properties, inspect output), no event payload, no log line on stdout/stderr, no
// status() output and no CLI output (every command, --verbose included).
import { spawn } from "node:child_process";
import path from "node:path";
import util from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ominipg, OminipgError } from "../src/index.js";
import { redact } from "../src/core/url.js";
import { createTestDatabase, tempDir, unreachableUrl, type TestDatabase } from "./harness/index.js";
import { captureOutput } from "./process-helpers.js";

/** A password with every character that needs percent-encoding in a URL. */
const PASSWORD = `S3cr3t-p@ss:w/rd?#%'"\\ x`;
const ENCODED = encodeURIComponent(PASSWORD);
const FORMS = [PASSWORD, ENCODED, "S3cr3t"];
const SCHEMA = [`CREATE TABLE IF NOT EXISTS items (id int PRIMARY KEY, v text)`];

function withPassword(url: string, password = PASSWORD): string {
  const u = new URL(url);
  u.password = encodeURIComponent(password);
  return u.href;
}

/** Every way an application might print `value`. */
function renderings(value: unknown): string[] {
  const out = [String(value), util.inspect(value, { depth: 20, showHidden: true }), util.inspect(value, { depth: 20 })];
  try {
    out.push(JSON.stringify(value) ?? "");
  } catch {
    // circular: inspect covers it
  }
  if (value instanceof Error) out.push(value.stack ?? "", value.message);
  return out;
}

function expectNoPassword(what: string, value: unknown): void {
  for (const text of renderings(value))
    for (const form of FORMS)
      expect(text.includes(form), `${what} shows the password (${form}):\n${text.slice(0, 2000)}`).toBe(false);
}

function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [path.join(import.meta.dirname, "..", "dist", "cli", "main.js"), ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  return new Promise((resolve) => child.on("exit", (code) => resolve({ code, out })));
}

describe("security: passwords never leak", () => {
  let remote: TestDatabase;
  let wrongPassword: string;
  let down: string;
  let noDatabase: string;
  beforeAll(async () => {
    remote = await createTestDatabase();
    wrongPassword = withPassword(remote.url);
    down = withPassword(unreachableUrl());
    const u = new URL(wrongPassword);
    u.pathname = "/no_such_database";
    noDatabase = u.href;
  });
  afterAll(async () => {
    await remote.drop();
  });

  it("redact() removes the password from URLs in text, encoded or not", () => {
    const text = `failed: ${wrongPassword} and ${down.replace(ENCODED, PASSWORD.replace(/[ /?#@:]/g, "_"))}`;
    expect(redact(text, [PASSWORD, ENCODED])).not.toMatch(/S3cr3t/);
    expect(redact(`postgres://u:${ENCODED}@h/db`)).toBe("postgres://u:***@h/db");
  });

  it("connect() with a malformed URL: a ConfigError that does not carry the URL", async () => {
    for (const [option, url] of [
      ["syncUrl", `postgres://postgres:${PASSWORD}@127.0.0.1:5432/db`],
      ["syncUrl", `postgres://postgres:S3cr3t@127.0.0.1:notaport/db`],
      ["url", `postgres://postgres:S3cr3t#x@127.0.0.1:5432/db`],
    ] as const) {
      const err = await Ominipg.connect({ [option]: url }).catch((e: unknown) => e);
      expect(err, `${option} ${url}`).toMatchObject({ code: "CONFIG_INVALID" });
      expectNoPassword(`connect({ ${option} })`, err);
    }
  });

  it("sync(), verify(), syncSequences(), status() and error events against a remote that refuses: nothing shows the password", async () => {
    const { output } = await captureOutput(async () => {
      for (const syncUrl of [wrongPassword, down, noDatabase]) {
        const events: unknown[] = [];
        const db = await Ominipg.connect({
          syncUrl,
          schemaSQL: SCHEMA,
          sync: { retry: { attempts: 1 } },
        });
        db.on("error", (e) => events.push(e));
        try {
          await db.query(`INSERT INTO items VALUES (1, 'x')`);
          const failures = await Promise.all(
            [db.sync(), db.verify(), db.syncSequences()].map((p) =>
              p.then(
                () => new Error("did not fail"),
                (e: unknown) => e,
              ),
            ),
          );
          expectNoPassword("the client", db);
          for (const f of failures) {
            expect(f).toBeInstanceOf(OminipgError);
            expectNoPassword(`a failure against ${redact(syncUrl)}`, f);
          }
          const status = await db.status();
          expect(status.remote).toMatchObject({ reachable: false });
          expect(status.remote!.url).toContain(":***@");
          expectNoPassword("status()", status);
          await expect.poll(() => events.length).toBeGreaterThan(0);
          for (const e of events) expectNoPassword("an error event", e);
        } finally {
          await db.close();
        }
      }
    });
    for (const form of FORMS) expect(output.includes(form), `stdout/stderr shows the password:\n${output}`).toBe(false);
  });

  it("Ominipg.feed() against a server that refuses or is down: a typed FEED_UNAVAILABLE without the password", async () => {
    for (const url of [wrongPassword, down, noDatabase]) {
      const err = await Ominipg.feed(url).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OminipgError);
      expect(err).toMatchObject({ code: "FEED_UNAVAILABLE" });
      expectNoPassword(`Ominipg.feed(${redact(url)})`, err);
    }
  });

  it("direct mode (url is a postgres:// URL) with the wrong password or an unreachable server", async () => {
    for (const url of [wrongPassword, down]) {
      const err = await Ominipg.connect({ url, schemaSQL: SCHEMA }).then(
        async (db) => {
          try {
            return await db.query(`SELECT 1`).then(
              () => new Error("did not fail"),
              (e: unknown) => e,
            );
          } finally {
            await db.close();
          }
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(Error);
      expectNoPassword(`direct mode against ${redact(url)}`, err);
    }
  });

  it("the CLI prints no password: status, sync, verify, with --verbose and with $OMINIPG_REMOTE_URL", async () => {
    const dir = path.join(tempDir("ominipg-redaction-"), "db");
    const db = await Ominipg.connect({
      url: dir,
      syncUrl: down,
      schemaSQL: SCHEMA,
    });
    db.on("error", () => {});
    await db.query(`INSERT INTO items VALUES (1, 'pending')`);
    await db.close();
    const runs = [
      await cli(["status", dir, "--remote", wrongPassword]),
      await cli(["status", dir, "--remote", down, "--verbose"]),
      await cli(["sync", dir, "--remote", wrongPassword, "--verbose"]),
      await cli(["sync", dir, "--remote", noDatabase]),
      await cli(["verify", dir, "--remote", down, "--verbose"]),
      await cli(["sync", dir, "--verbose"], { OMINIPG_REMOTE_URL: wrongPassword }),
      await cli(["sync", dir, "--remote", `postgres://postgres:${PASSWORD}@127.0.0.1:notaport/db`, "--verbose"]),
    ];
    for (const run of runs) {
      expect(run.code, run.out).not.toBe(0);
      expect(run.out.length).toBeGreaterThan(0);
      for (const form of FORMS)
        expect(run.out.includes(form), `CLI output shows the password:\n${run.out}`).toBe(false);
    }
    expect(runs[2]!.out).toMatch(/password authentication failed/);
  });
});
