// Helpers for test files. The server and the PGlite template are prepared
// once per run by tests/harness/global-setup.ts and reached via `inject`.
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import postgres from "postgres";
import { inject, onTestFinished } from "vitest";

/** Superuser URL of the shared test server (its `postgres` database). */
export function adminUrl(): string {
  return inject("ominipgAdminUrl");
}

/** A postgres URL on a loopback port nothing listens on (connections are refused). */
export function unreachableUrl(): string {
  return `postgres://postgres:pw@127.0.0.1:${inject("ominipgUnreachablePort")}/postgres`;
}

export interface TestDatabase {
  /** URL of the new database, with the admin credentials. */
  url: string;
  /** Admin postgres.js client on the new database (max 2 connections). */
  sql: postgres.Sql;
  /** Ends `sql` and drops the database (and any replication slots in it). */
  drop(): Promise<void>;
}

/** Runs `fn` with a superuser client of the shared server's `postgres` database (one connection, ended after). */
export async function withAdmin<T>(fn: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  try {
    return await fn(sql);
  } finally {
    await sql.end();
  }
}

let createStrategy: Promise<string> | undefined;

/** Creates an empty database with a unique name on the shared server. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `t_${randomBytes(8).toString("hex")}`;
  await withAdmin(async (admin) => {
    // PostgreSQL 15+ copies template1 by writing every page to the WAL (~8 MB) unless told to copy its files: on a
    // server with fsync=off, a file copy takes a quarter of the time, and the tests create hundreds of databases.
    createStrategy ??= admin`SELECT current_setting('server_version_num')::int >= 150000 AS modern`.then(([row]) =>
      row?.["modern"] ? " STRATEGY FILE_COPY" : "",
    );
    await admin.unsafe(`CREATE DATABASE ${name}${await createStrategy}`);
  });
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  const sql = postgres(url.href, { max: 2, onnotice: () => {} });
  let dropped: Promise<void> | undefined;
  return {
    url: url.href,
    sql,
    drop: () =>
      (dropped ??= (async () => {
        await sql.end({ timeout: 5 });
        await withAdmin(async (admin) => {
          // DROP DATABASE ... WITH (FORCE) still refuses a database that owns
          // logical replication slots, and a slot stays "active" for a moment
          // after its walsender is terminated, hence the retries.
          for (let attempt = 1; ; attempt++) {
            try {
              await admin`
                select pg_terminate_backend(active_pid) from pg_replication_slots
                where database = ${name} and active_pid is not null`;
              await admin`
                select pg_drop_replication_slot(slot_name) from pg_replication_slots
                where database = ${name}`;
              await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
              return;
            } catch (err) {
              if (attempt >= 30) throw err;
              await sleep(100);
            }
          }
        });
      })()),
  };
}

let template: Promise<Buffer> | undefined;

/**
 * A fresh Blob of the PGlite template dump, for `PGlite.create({ loadDataDir })`. `Ominipg.connect()` needs no
 * `loadDataDir`: a new database starts from the same dump through the init cache (OMINIPG_CACHE_DIR, set by
 * global-setup.ts), a quicker path than PGlite's `loadDataDir` (~0.08 s of CPU less per database).
 */
export async function pgliteTemplate(): Promise<Blob> {
  template ??= readFile(inject("ominipgPgliteTemplate"));
  return new Blob([await template]);
}

/**
 * Creates a directory under os.tmpdir(). Called inside a test, it is removed
 * when that test finishes; called anywhere else (beforeAll, describe, a
 * hook) the caller must remove it.
 */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  } catch {
    // Not inside a test body: cleanup is the caller's job.
  }
  return dir;
}

/** The shared server's TLS: its CA file, a CA that did not sign it, the certificate's host name; or why there is none. */
export function tlsInfo(): { caFile: string; wrongCaFile: string; serverName: string } | { skip: string } {
  return inject("ominipgTls");
}

/** PgBouncer (transaction pooling) in front of the shared server: its admin URL; or why there is none. */
export function poolerInfo(): { url: string } | { skip: string } {
  return inject("ominipgPooler");
}

/** `url` (a database's) as `role` with `password`. */
export function urlAs(url: string, role: string, password: string): string {
  const u = new URL(url);
  u.username = role;
  u.password = password;
  return u.href;
}

/**
 * Login roles on the shared server, each with a random password and `attributes` (e.g. "REPLICATION"), allowed
 * to connect to `databaseUrl`'s database: their URLs to it, by name. The caller drops them (`dropRoles`).
 */
export async function createLoginRoles(
  databaseUrl: string,
  roles: readonly string[],
  attributes: Readonly<Record<string, string>> = {},
): Promise<Record<string, string>> {
  const db = new URL(databaseUrl).pathname.slice(1);
  const urls: Record<string, string> = {};
  await withAdmin(async (sql) => {
    for (const role of roles) {
      const password = randomBytes(12).toString("hex");
      await sql.unsafe(`CREATE ROLE ${role} LOGIN ${attributes[role] ?? ""} PASSWORD '${password}'`);
      await sql.unsafe(`GRANT CONNECT ON DATABASE ${db} TO ${role}`);
      urls[role] = urlAs(databaseUrl, role, password);
    }
  });
  return urls;
}

/** Drops roles of the shared server (their objects in other databases must be gone: drop those databases first). */
export async function dropRoles(roles: readonly string[]): Promise<void> {
  await withAdmin(async (sql) => {
    for (const role of roles) await sql.unsafe(`DROP ROLE IF EXISTS ${role}`);
  });
}
