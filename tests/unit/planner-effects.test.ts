// What a statement does to Ominipg's caches (query/planner.ts): DDL and a SET (or set_config()) of how names resolve
// make the client reload its catalog and prepare its statements again; any other setting keeps them.
import { beforeAll, describe, expect, it } from "vitest";
import { loadParser } from "../../src/capture/parser.js";
import { Planner, type Effect } from "../../src/query/planner.js";

const planner = new Planner(undefined);

async function effect(sql: string): Promise<Effect> {
  const plan = await planner.plan(sql);
  if (plan.kind !== "single") throw new Error(`one statement expected: ${sql}`);
  return plan.step.effect;
}

beforeAll(() => loadParser());

describe("planner effects", () => {
  it.each([
    `SET TimeZone TO 'Asia/Kolkata'`,
    `SET TIME ZONE 'UTC'`,
    `SET LOCAL statement_timeout = 5000`,
    `SET application_name = 'app'`,
    `RESET DateStyle`,
    `SET TRANSACTION ISOLATION LEVEL SERIALIZABLE`,
    `SET extra_float_digits = 3`,
    `SELECT set_config('app.tenant', '42', true)`,
    `DO $$ BEGIN PERFORM pg_sleep(0); END $$`,
  ])("%s keeps the catalog", async (sql) => {
    expect(await effect(sql)).toBe("none");
  });

  it.each([
    `SET search_path = s2, public`,
    `SET LOCAL search_path TO s2`,
    `SET "search_path" = s2`,
    `SET SCHEMA 's2'`,
    `RESET search_path`,
    `SET search_path TO DEFAULT`,
    `SET ROLE tenant_a`,
    `RESET ROLE`,
    `SET SESSION AUTHORIZATION tenant_a`,
    `RESET ALL`,
    `DISCARD ALL`,
    `CREATE TABLE t (id int PRIMARY KEY)`,
    `ALTER TABLE t ADD COLUMN v text`,
    `SELECT set_config('search_path', 's2', false)`,
    `SELECT set_config('ROLE', 'tenant_a', true)`,
    `SELECT set_config($1, $2, false)`,
    `DO $$ BEGIN EXECUTE 'SET search_path = s2'; END $$`,
    `DO $$ BEGIN PERFORM set_config('search_path', 's2', false); END $$`,
  ])("%s reloads it", async (sql) => {
    expect(await effect(sql)).toBe("ddl");
  });
});
