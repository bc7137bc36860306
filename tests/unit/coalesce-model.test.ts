// Model test of the coalescer (src/push/coalesce.ts), no server: random transactions (inserts, updates, key
// changes, deletes, truncates, rolled-back transactions) run against an in-memory "local database" that
// writes the change log the way capture does (one entry per row change, json text images as `to_json`
// renders them, ids from a sequence, so a rolled-back transaction leaves a gap). The log is then cut into
// windows exactly as the push does (a new Coalescer whenever `add` refuses an entry) and each window's
// RowOps are applied to an in-memory "remote" that starts as the local state before the log. The remote must
// end equal to the local state, in whatever order a window's writes are applied (the push reorders them:
// Coalescer.add must keep dependent writes out of one window), without ever breaking a unique constraint.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { deepStrictEqual, ok, strictEqual } from "node:assert/strict";
import { Coalescer, type Coalesced, type RowOp } from "../../src/push/coalesce.js";
import { planBatches } from "../../src/push/batches.js";
import type { TableInfo } from "../../src/core/table.js";
import { noRules, type TableRules } from "../../src/capture/constraints.js";

type LogEntry = Parameters<Coalescer["add"]>[0];

/** deepStrictEqual for flat rows, arrays and strings, fast on success (node's walks too much for 100k calls). */
function same<T>(actual: T, expected: T, message: string | (() => string)): void {
  if (!equal(actual, expected)) deepStrictEqual(actual, expected, typeof message === "string" ? message : message());
}
/** ok() with a message built only on failure. */
function check(condition: boolean, message: () => string): void {
  if (!condition) ok(false, message());
}
function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every(
    (k) => Object.hasOwn(b, k) && equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]),
  );
}

type Value = string | number | null;
type Row = Record<string, Value>;
/** A table's rows by key (the JSON text of the primary key values). */
type TableState = Map<string, Row>;
/** Every table's rows, by table oid. */
type State = Map<number, TableState>;

// ---------------------------------------------------------------------------------------------------------
// Tables and constraints

function tableInfo(oid: number, name: string, columns: string[], primaryKey: string[]): TableInfo {
  return {
    oid,
    schema: "public",
    name,
    sql: `"public"."${name}"`,
    columns: columns.map((c) => ({
      name: c,
      type: "text",
      typeId: "25:-1",
      generated: false,
      identity: "" as const,
      jsonValue: "text" as const,
    })),
    writable: columns,
    updatable: columns,
    primaryKey,
    references: [],
  };
}

/** items (id int PRIMARY KEY, v text, u int): v and u take few values, so they collide often. */
const ITEMS = tableInfo(101, "items", ["id", "v", "u"], ["id"]);
/** pairs (a int, b int, w int, PRIMARY KEY (a, b)): a composite key. */
const PAIRS = tableInfo(102, "pairs", ["a", "b", "w"], ["a", "b"]);
const TABLES = [ITEMS, PAIRS];

const ITEM_IDS = 7;
const V_VALUES: Value[] = [null, "a", "A", "b", "c"];
const U_VALUES: Value[] = [null, 1, 2];
const PAIR_SIDE = 3;

/**
 * A unique constraint as the model checks it (local and remote alike): the value a row holds, undefined when
 * it cannot conflict (a NULL in a NULLS DISTINCT index).
 */
type Unique = (row: Row) => string | undefined;

const keyOf = (t: TableInfo, row: Row): string => JSON.stringify(t.primaryKey.map((c) => row[c]));

interface Variant {
  name: string;
  /** What the coalescer is told (TableRules by oid, as loadRules would find them). */
  rules: Map<number, TableRules>;
  /** What the model enforces, by oid (the primary key is always enforced). */
  uniques: Map<number, Unique[]>;
  keyChanges: boolean;
  /** Every log must fold into one window (nothing in the rules can make an entry wait). */
  oneWindow: boolean;
}

function rules(partial: Partial<TableRules>): TableRules {
  return { ...noRules(), ...partial };
}

const pkRule = (t: TableInfo) => ({ columns: t.primaryKey, nullsDistinct: true });
const uValue =
  (nullsDistinct: boolean): Unique =>
  (row) =>
    row.u === null && nullsDistinct ? undefined : `u:${String(row.u)}`;
/** CREATE UNIQUE INDEX ON items (lower(v)): the coalescer only knows that it depends on v. */
const lowerV: Unique = (row) => (row.v === null ? undefined : `lower:${String(row.v).toLowerCase()}`);

const VARIANTS: Variant[] = [
  {
    // Without a single rule, the coalescer never cuts a window: the folding of whole logs, key changes left
    // out (a key change needs the primary key's rule to be ordered safely).
    name: "no rules, no key changes",
    rules: new Map(),
    uniques: new Map(),
    keyChanges: false,
    oneWindow: true,
  },
  {
    name: "primary keys",
    rules: new Map(TABLES.map((t) => [t.oid, rules({ uniques: [pkRule(t)] })])),
    uniques: new Map(),
    keyChanges: true,
    oneWindow: false,
  },
  {
    name: "primary keys, UNIQUE (u), UNIQUE INDEX ON lower(v)",
    rules: new Map([
      [
        ITEMS.oid,
        rules({
          uniques: [pkRule(ITEMS), { columns: ["u"], nullsDistinct: true }],
          opaqueUniques: [{ columns: ["v"] }],
        }),
      ],
      [PAIRS.oid, rules({ uniques: [pkRule(PAIRS)] })],
    ]),
    uniques: new Map([[ITEMS.oid, [uValue(true), lowerV]]]),
    keyChanges: true,
    oneWindow: false,
  },
  {
    name: "primary keys, UNIQUE NULLS NOT DISTINCT (u)",
    rules: new Map([
      [ITEMS.oid, rules({ uniques: [pkRule(ITEMS), { columns: ["u"], nullsDistinct: false }] })],
      [PAIRS.oid, rules({ uniques: [pkRule(PAIRS)] })],
    ]),
    uniques: new Map([[ITEMS.oid, [uValue(false)]]]),
    keyChanges: true,
    oneWindow: false,
  },
];

/** The first unique value `row` would share with another row of `rows` (other than the one at `self`). */
function clash(t: TableInfo, uniques: Unique[], rows: TableState, row: Row, self?: string): string | undefined {
  const key = keyOf(t, row);
  if (key !== self && rows.has(key)) return `primary key ${key}`;
  for (const u of uniques) {
    const value = u(row);
    if (value === undefined) continue;
    for (const [k, other] of rows) if (k !== self && k !== key && u(other) === value) return value;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------
// The local database: commands -> log

/** One statement, in abstract numbers that the current state turns into a valid row change. */
interface Cmd {
  op: "insert" | "update" | "rekey" | "delete" | "truncate";
  table: number;
  a: number;
  b: number;
  c: number;
}
interface Txn {
  cmds: Cmd[];
  rollback: boolean;
  priority: number;
}

const cmdArb = (keyChanges: boolean): fc.Arbitrary<Cmd> =>
  fc.record({
    op: fc.oneof(
      { arbitrary: fc.constant("insert" as const), weight: 16 },
      { arbitrary: fc.constant("update" as const), weight: 16 },
      { arbitrary: fc.constant("rekey" as const), weight: keyChanges ? 12 : 0 },
      { arbitrary: fc.constant("delete" as const), weight: 12 },
      { arbitrary: fc.constant("truncate" as const), weight: 1 },
    ),
    table: fc.nat(TABLES.length - 1),
    a: fc.nat(20),
    b: fc.nat(20),
    c: fc.nat(20),
  });

const txnArb = (keyChanges: boolean): fc.Arbitrary<Txn> =>
  fc.record({
    cmds: fc.array(cmdArb(keyChanges), { minLength: 1, maxLength: 3 }),
    rollback: fc.nat(6).map((n) => n === 0),
    priority: fc.nat(8).map((n) => (n === 0 ? 1 : 0)),
  });

const initialArb = fc.record({
  items: fc.uniqueArray(
    fc.record({ id: fc.nat(ITEM_IDS - 1), v: fc.constantFrom(...V_VALUES), u: fc.constantFrom(...U_VALUES) }),
    {
      selector: (r) => r.id,
      maxLength: 5,
    },
  ),
  pairs: fc.uniqueArray(fc.record({ a: fc.nat(PAIR_SIDE - 1), b: fc.nat(PAIR_SIDE - 1), w: fc.nat(2) }), {
    selector: (r) => `${r.a},${r.b}`,
    maxLength: 5,
  }),
});

function cloneState(s: State): State {
  return new Map([...s].map(([oid, rows]) => [oid, new Map([...rows].map(([k, r]) => [k, { ...r }]))]));
}

/** The initial state, dropping rows that would break the variant's unique constraints. */
function initialState(v: Variant, init: { items: Row[]; pairs: Row[] }): State {
  const s: State = new Map(TABLES.map((t) => [t.oid, new Map()]));
  for (const [t, rows] of [
    [ITEMS, init.items],
    [PAIRS, init.pairs],
  ] as const) {
    const state = s.get(t.oid)!;
    for (const r of rows) if (!clash(t, v.uniques.get(t.oid) ?? [], state, r)) state.set(keyOf(t, r), { ...r });
  }
  return s;
}

/** `to_json(row)`: columns in table order, no spaces. */
function image(t: TableInfo, row: Row): string {
  return `{${t.columns.map((c) => `${JSON.stringify(c.name)}:${JSON.stringify(row[c.name])}`).join(",")}}`;
}

/**
 * Runs the transactions on `state` (in place) and returns the log. Each statement gets the next id; a
 * rolled-back transaction's entries never reach the log (the ids stay unused) and its changes are undone.
 */
function runLocal(v: Variant, state: State, txns: Txn[]): { log: LogEntry[]; rolledBack: number } {
  const log: LogEntry[] = [];
  let nextId = 1;
  let rolledBack = 0;
  for (const txn of txns) {
    const saved = txn.rollback ? cloneState(state) : undefined;
    const entries: LogEntry[] = [];
    const entry = (t: TableInfo, op: LogEntry["op"], oldRow: Row | null, newRow: Row | null) =>
      entries.push({
        id: nextId++,
        schema: t.schema,
        table: t.name,
        op,
        priority: txn.priority,
        oldRow: oldRow && image(t, oldRow),
        newRow: newRow && image(t, newRow),
      });
    for (const cmd of txn.cmds) {
      const t = TABLES[cmd.table]!;
      const rows = state.get(t.oid)!;
      const uniques = v.uniques.get(t.oid) ?? [];
      const existing = [...rows.values()];
      const pick = existing.length ? existing[cmd.a % existing.length]! : undefined;
      switch (cmd.op) {
        case "insert": {
          // The first free key from the chosen one on.
          const size = t === ITEMS ? ITEM_IDS : PAIR_SIDE * PAIR_SIDE;
          let row: Row | undefined;
          for (let i = 0; i < size && !row; i++) {
            const n = (cmd.a + i) % size;
            const r: Row =
              t === ITEMS
                ? { id: n, v: V_VALUES[cmd.b % V_VALUES.length]!, u: U_VALUES[cmd.c % U_VALUES.length]! }
                : { a: n % PAIR_SIDE, b: Math.floor(n / PAIR_SIDE), w: cmd.b % 3 };
            if (!rows.has(keyOf(t, r))) row = r;
          }
          if (!row || clash(t, uniques, rows, row)) break; // the statement would fail: not run
          rows.set(keyOf(t, row), row);
          entry(t, "I", null, row);
          break;
        }
        case "update": {
          if (!pick) break;
          const next: Row =
            t === ITEMS
              ? {
                  ...pick,
                  v: V_VALUES[cmd.b % V_VALUES.length]!,
                  u: cmd.c % 2 ? (pick.u ?? null) : U_VALUES[cmd.c % U_VALUES.length]!,
                }
              : { ...pick, w: cmd.b % 3 };
          if (clash(t, uniques, rows, next, keyOf(t, pick))) break;
          rows.set(keyOf(t, next), next); // an update to the same values is still logged
          entry(t, "U", pick, next);
          break;
        }
        case "rekey": {
          if (!pick) break;
          const next: Row =
            t === ITEMS
              ? { ...pick, id: cmd.b % ITEM_IDS, ...(cmd.c % 3 === 0 ? { v: V_VALUES[cmd.c % V_VALUES.length]! } : {}) }
              : cmd.c % 2
                ? { ...pick, a: cmd.b % PAIR_SIDE }
                : { ...pick, b: cmd.b % PAIR_SIDE };
          if (clash(t, uniques, rows, next, keyOf(t, pick))) break;
          rows.delete(keyOf(t, pick));
          rows.set(keyOf(t, next), next);
          entry(t, "U", pick, next);
          break;
        }
        case "delete":
          if (!pick) break;
          rows.delete(keyOf(t, pick));
          entry(t, "D", pick, null);
          break;
        case "truncate":
          rows.clear();
          entry(t, "T", null, null);
          break;
      }
    }
    if (saved) {
      rolledBack += entries.length;
      for (const [oid, rows] of saved) state.set(oid, rows);
    } else log.push(...entries);
  }
  return { log, rolledBack };
}

// ---------------------------------------------------------------------------------------------------------
// The remote: RowOps -> state

const tableOf = (e: LogEntry): TableInfo => TABLES.find((t) => t.name === e.table)!;
const parsed = new WeakMap<Map<string, string>, Row>();
/** An image as a row (parsed once per image; a copy, free to change). */
function rowOf(img: Map<string, string>): Row {
  let row = parsed.get(img);
  if (!row) parsed.set(img, (row = Object.fromEntries([...img].map(([c, v]) => [c, JSON.parse(v) as Value]))));
  return { ...row };
}

/** The key images a write touches: the one it writes, and for a key change the one it leaves. */
function touchedKeys(op: RowOp): string[] {
  if (op.kind === "delete") return [keyOf(op.table, rowOf(op.key))];
  if (op.kind === "upsert") return [keyOf(op.table, rowOf(op.image))];
  return [keyOf(op.table, rowOf(op.key)), keyOf(op.table, rowOf(op.image))];
}

/**
 * Applies one write as the push's statement does (see push/statements.ts), after checking that the remote
 * holds what the write expects: its base image (the row before the window), or no row for an insert.
 */
function applyOp(v: Variant, remote: State, op: RowOp): void {
  const t = op.table;
  const rows = remote.get(t.oid)!;
  if (op.kind === "delete") {
    const key = keyOf(t, rowOf(op.key));
    same(rows.get(key), rowOf(op.base), () => `delete ${key}: remote row`);
    rows.delete(key);
    return;
  }
  const img = rowOf(op.image);
  const target = keyOf(t, img);
  if (op.kind === "upsert") {
    const existing = rows.get(target);
    if (op.base === null) same(existing, undefined, () => `insert ${target}: remote row`);
    else {
      same(keyOf(t, rowOf(op.base)), target, () => `upsert ${target}: key of its base`);
      same(existing, rowOf(op.base), () => `upsert ${target}: remote row`);
    }
    if (existing) {
      // INSERT .. ON CONFLICT (key) DO UPDATE SET `set`
      const updated = { ...existing };
      for (const c of op.set) if (t.updatable.includes(c)) updated[c] = img[c]!;
      checkUnique(v, t, rows, updated, target);
      rows.set(target, updated);
    } else {
      const inserted = Object.fromEntries(t.writable.map((c) => [c, img[c]!]));
      checkUnique(v, t, rows, inserted);
      rows.set(target, inserted);
    }
  } else {
    // UPDATE .. SET `set` WHERE key = op.key
    const key = keyOf(t, rowOf(op.key));
    const existing = rows.get(key);
    same(existing, rowOf(op.base), () => `move ${key} -> ${target}: remote row`);
    const updated = { ...existing! };
    for (const c of op.set) updated[c] = img[c]!;
    checkUnique(v, t, rows, updated, key);
    rows.delete(key);
    rows.set(keyOf(t, updated), updated);
  }
  // The write alone makes the row what the window left it.
  same(rows.get(target), img, () => `${op.kind} ${target}: row after the write`);
}

function checkUnique(v: Variant, t: TableInfo, rows: TableState, row: Row, self?: string): void {
  const broken = clash(t, v.uniques.get(t.oid) ?? [], rows, row, self);
  if (broken !== undefined) throw new Error(`remote unique violation on ${t.name}: ${broken} (${JSON.stringify(row)})`);
}

function applyWindow(v: Variant, remote: State, truncates: TableInfo[], ops: RowOp[]): void {
  for (const t of truncates) remote.get(t.oid)!.clear();
  for (const op of ops) applyOp(v, remote, op);
}

// ---------------------------------------------------------------------------------------------------------
// The property

interface Seen {
  windows: number;
  cuts: number;
  upserts: number;
  updates: number;
  reinserts: number;
  moves: number;
  deletes: number;
  noops: number;
  truncates: number;
  rolledBack: number;
}

function checkLog(v: Variant, before: State, log: LogEntry[], after: State, seen: Seen): void {
  // Cut the log into windows as the push does.
  const windows: { entries: LogEntry[]; coalescer: Coalescer; result?: Coalesced }[] = [];
  let current = { entries: [] as LogEntry[], coalescer: new Coalescer(v.rules) };
  for (const e of log) {
    if (!current.coalescer.add(e, tableOf(e))) {
      ok(current.entries.length > 0, `entry ${e.id} refused by an empty window`);
      windows.push(current);
      current = { entries: [], coalescer: new Coalescer(v.rules) };
      ok(current.coalescer.add(e, tableOf(e)), `entry ${e.id} refused by an empty window`);
      seen.cuts++;
    }
    current.entries.push(e);
  }
  if (current.entries.length) windows.push(current);
  if (v.oneWindow) ok(windows.length <= 1, `${windows.length} windows without a rule to cut them`);

  const remote = cloneState(before);
  for (const w of windows) {
    const result = w.coalescer.result();
    seen.windows++;
    strictEqual(w.coalescer.entries, w.entries.length, "entries counted");

    // Every entry of the window is accounted for exactly once: by a write, a no-op or a truncation.
    const accounted = [
      ...result.rows.flatMap((op) => op.entryIds),
      ...result.noop.flatMap((n) => n.entryIds),
      ...result.truncates.flatMap((t) => t.entryIds),
    ];
    same(
      accounted.sort((a, b) => a - b),
      w.entries.map((e) => e.id),
      "entries of the window: once each",
    );

    const byId = new Map(w.entries.map((e) => [e.id, e]));
    for (const op of result.rows) {
      ok(op.entryIds.length > 0, "a write stands for entries");
      check(
        op.entryIds.every((id, i) => i === 0 || op.entryIds[i - 1]! < id),
        () => `entry ids in log order: ${op.entryIds.join()}`,
      );
      strictEqual(op.firstId, op.entryIds[0], "firstId");
      strictEqual(op.lastId, op.entryIds[op.entryIds.length - 1], "lastId");
      strictEqual(op.priority, Math.max(...op.entryIds.map((id) => byId.get(id)!.priority)), "priority: the highest");
      check(
        op.entryIds.every((id) => byId.get(id)!.table === op.table.name),
        () => `entries of ${op.table.name}: ${op.entryIds.join()}`,
      );
      // What the write sets (and so what the push compares with the remote row first): the columns that changed
      // since the base image; every column for a new row, or for a row deleted and inserted again.
      const reinserted = op.kind !== "delete" && op.base !== null && op.entryIds.some((id) => byId.get(id)!.op === "I");
      if (op.kind === "upsert") strictEqual(op.reinserted, reinserted, "reinserted: deleted and inserted again");
      if (op.kind !== "delete") {
        const image = rowOf(op.image);
        const base = op.base && rowOf(op.base);
        const nonKey =
          op.kind === "upsert" ? op.table.writable.filter((c) => !op.table.primaryKey.includes(c)) : op.table.writable;
        const expected = base === null || reinserted ? nonKey : op.table.writable.filter((c) => image[c] !== base[c]);
        same([...op.set].sort(), [...expected].sort(), () => `columns set by ${op.kind} ${keyOf(op.table, image)}`);
        if (op.kind === "upsert" && base !== null) ok(op.set.length > 0, "an upsert that changes nothing is a no-op");
      }
    }
    for (const t of result.truncates) {
      ok(
        t.entryIds.some((id) => byId.get(id)!.op === "T"),
        "a truncation stands for a TRUNCATE",
      );
      check(
        t.entryIds.every((id) => byId.get(id)!.table === t.table.name),
        () => `entries of truncated ${t.table.name}: ${t.entryIds.join()}`,
      );
    }

    // At most one write per row key: none of them depends on another.
    const keys = result.rows.flatMap((op) => touchedKeys(op).map((k) => `${op.table.oid}/${k}`));
    check(new Set(keys).size === keys.length, () => `keys written twice in one window: ${keys.join(" ")}`);

    // Base images: the remote row before the window (after the window's truncations, which go first).
    const truncated = new Set(result.truncates.map((t) => t.table.oid));
    for (const op of result.rows) {
      const key = keyOf(op.table, rowOf(op.kind === "upsert" ? op.image : op.key));
      const start = truncated.has(op.table.oid) ? undefined : remote.get(op.table.oid)!.get(key);
      same(start, op.base === null ? undefined : rowOf(op.base), () => `base of ${op.kind} ${key}`);
    }

    // The writes commute: the order they come in, the push's order (planBatches), and the reverse.
    const batches = planBatches(result, new Map(TABLES.map((t, i) => [t.oid, i])), 3);
    const planned = batches.flatMap((b) => b.ops);
    const orders = [result.rows, planned, [...result.rows].reverse()];
    const outcomes = orders.map((ops) => {
      const r = cloneState(remote);
      applyWindow(
        v,
        r,
        result.truncates.map((t) => t.table),
        ops,
      );
      return r;
    });
    same(dump(outcomes[1]!), dump(outcomes[0]!), "planned order and log order agree");
    same(dump(outcomes[2]!), dump(outcomes[0]!), "reversed order and log order agree");
    for (const [oid, rows] of outcomes[0]!) remote.set(oid, rows);

    for (const op of result.rows) {
      if (op.kind === "upsert") {
        seen.upserts++;
        if (op.base !== null) seen.updates++;
        if (op.reinserted) seen.reinserts++;
      } else if (op.kind === "move") seen.moves++;
      else seen.deletes++;
    }
    seen.noops += result.noop.length;
    seen.truncates += result.truncates.length;
  }

  // After every window, the remote holds what the local database holds.
  same(dump(remote), dump(after), "remote after the push = local");
}

/** A state as sorted "table/key row" lines, for comparison and readable failures. */
function dump(s: State): string[] {
  const lines: string[] = [];
  for (const [oid, rows] of s) {
    const t = TABLES.find((x) => x.oid === oid)!;
    for (const [k, r] of rows) lines.push(`${t.name}/${k} ${image(t, r)}`);
  }
  return lines.sort();
}

function property(v: Variant, seen: Seen) {
  return fc.property(initialArb, fc.array(txnArb(v.keyChanges), { maxLength: 20, size: "max" }), (init, txns) => {
    const before = initialState(v, init);
    const after = cloneState(before);
    const { log, rolledBack } = runLocal(v, after, txns);
    seen.rolledBack += rolledBack;
    checkLog(v, before, log, after, seen);
  });
}

// Random logs per variant. OMINIPG_MODEL_RUNS=100000 for a long soak; OMINIPG_MODEL_STATS=1 prints how many
// windows, cuts, upserts, moves... the logs produced.
const RUNS = Number(process.env.OMINIPG_MODEL_RUNS ?? 750);

describe("Coalescer against a reference model", () => {
  for (const v of VARIANTS) {
    it(`${v.name}: windows applied in any order give the local state (${RUNS} random logs)`, () => {
      const seen: Seen = {
        windows: 0,
        cuts: 0,
        upserts: 0,
        updates: 0,
        reinserts: 0,
        moves: 0,
        deletes: 0,
        noops: 0,
        truncates: 0,
        rolledBack: 0,
      };
      fc.assert(property(v, seen), { numRuns: RUNS });
      // The random logs reached every kind of outcome (a weak generator would prove little).
      const wanted: (keyof Seen)[] = ["upserts", "updates", "reinserts", "deletes", "noops", "truncates", "rolledBack"];
      if (v.keyChanges) wanted.push("moves", "cuts");
      for (const k of wanted) expect(seen[k], `${k} seen`).toBeGreaterThan(0);
      if (process.env.OMINIPG_MODEL_STATS) console.log(v.name, seen);
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// The foreign-key rules, by example (the model above has no foreign keys)

describe("Coalescer: entries that must wait for the next window", () => {
  const parent = { ...tableInfo(201, "parent", ["id", "name"], ["id"]) };
  const child = { ...tableInfo(202, "child", ["id", "parent_id"], ["id"]), references: [201] };
  const tree = { ...tableInfo(203, "tree", ["id", "up"], ["id"]), references: [203] };
  let id = 0;
  const e = (t: TableInfo, op: LogEntry["op"], oldRow: Row | null, newRow: Row | null): LogEntry => ({
    id: ++id,
    schema: "public",
    table: t.name,
    op,
    priority: 0,
    oldRow: oldRow && image(t, oldRow),
    newRow: newRow && image(t, newRow),
  });
  const coalescer = (r: Record<number, Partial<TableRules>>) =>
    new Coalescer(new Map(Object.entries(r).map(([oid, p]) => [Number(oid), rules(p)])));
  /** Adds every entry, expecting each to be taken but the last, which must be refused (or taken if `lastTaken`). */
  function run(c: Coalescer, entries: [TableInfo, LogEntry][], lastTaken: boolean): void {
    entries.forEach(([t, entry], i) => {
      const last = i === entries.length - 1;
      const before = last
        ? JSON.stringify(c.result(), (k, v: unknown) => (v instanceof Map ? [...v] : k === "table" ? undefined : v))
        : "";
      expect(c.add(entry, t), `entry ${i + 1} (${entry.op} ${t.name})`).toBe(last ? lastTaken : true);
      if (last && !lastTaken) {
        // A refused entry leaves the window as it was.
        expect(
          JSON.stringify(c.result(), (k, v: unknown) => (v instanceof Map ? [...v] : k === "table" ? undefined : v)),
        ).toBe(before);
        expect(c.entries).toBe(entries.length - 1);
      }
    });
  }
  const p1 = { id: 1, name: "p" };
  const c1 = { id: 10, parent_id: 1 };

  it("ON DELETE CASCADE / SET NULL: a parent delete waits for the window that wrote child rows", () => {
    const cascade = { 201: { deleteActionChildren: [202] } };
    run(
      coalescer(cascade),
      [
        [child, e(child, "I", null, c1)],
        [parent, e(parent, "D", p1, null)],
      ],
      false,
    );
    run(
      coalescer(cascade),
      [
        [child, e(child, "D", c1, null)],
        [parent, e(parent, "D", p1, null)],
      ],
      true,
    ); // no child written
    run(
      coalescer({}),
      [
        [child, e(child, "I", null, c1)],
        [parent, e(parent, "D", p1, null)],
      ],
      true,
    ); // no action
  });

  it("ON DELETE CASCADE: a deleted parent inserted again waits (the remote must cascade the delete first)", () => {
    run(
      coalescer({ 201: { deleteActionChildren: [202] } }),
      [
        [parent, e(parent, "D", p1, null)],
        [parent, e(parent, "I", null, p1)],
      ],
      false,
    );
    run(
      coalescer({}),
      [
        [parent, e(parent, "D", p1, null)],
        [parent, e(parent, "I", null, p1)],
      ],
      true,
    );
  });

  it("ON UPDATE CASCADE: a parent key change waits for the window that wrote child rows; other updates do not", () => {
    const cascade = { 201: { updateActions: [{ child: 202, columns: ["id"] }] } };
    run(
      coalescer(cascade),
      [
        [child, e(child, "I", null, c1)],
        [parent, e(parent, "U", p1, { id: 2, name: "p" })],
      ],
      false,
    );
    run(
      coalescer(cascade),
      [
        [child, e(child, "I", null, c1)],
        [parent, e(parent, "U", p1, { id: 1, name: "q" })],
      ],
      true,
    );
  });

  it("ON UPDATE CASCADE on a UNIQUE column: a change of that column waits for the window that wrote child rows", () => {
    const cascade = { 201: { updateActions: [{ child: 202, columns: ["name"] }] } };
    run(
      coalescer(cascade),
      [
        [child, e(child, "I", null, c1)],
        [parent, e(parent, "U", p1, { id: 1, name: "renamed" })],
      ],
      false,
    );
    run(
      coalescer(cascade),
      [
        [child, e(child, "I", null, c1)],
        [parent, e(parent, "U", p1, { id: 2, name: p1.name })],
      ],
      true,
    );
  });

  it("a self-reference changed on a row already written waits; a row's first change does not", () => {
    const self = { 203: { selfRefs: [{ columns: ["up"], refs: ["id"] }] } };
    const root = { id: 1, up: null };
    const leaf = { id: 2, up: 1 };
    run(
      coalescer(self),
      [
        [tree, e(tree, "I", null, root)],
        [tree, e(tree, "I", null, leaf)],
        [tree, e(tree, "U", leaf, { id: 2, up: null })],
      ],
      false,
    );
    run(
      coalescer(self),
      [
        [tree, e(tree, "I", null, root)],
        [tree, e(tree, "U", leaf, { id: 2, up: null })],
      ],
      true,
    );
    run(
      coalescer(self),
      [
        [tree, e(tree, "I", null, leaf)],
        [tree, e(tree, "U", leaf, { id: 2, up: 1 })],
      ],
      true,
    );
  });

  it("a unique value given up in the window cannot be taken in it; the row that gave it up can take it back", () => {
    const unique = {
      201: {
        uniques: [
          { columns: ["id"], nullsDistinct: true },
          { columns: ["name"], nullsDistinct: true },
        ],
      },
    };
    run(
      coalescer(unique),
      [
        [parent, e(parent, "D", p1, null)],
        [parent, e(parent, "I", null, { id: 2, name: "p" })],
      ],
      false,
    );
    run(
      coalescer(unique),
      [
        [parent, e(parent, "U", p1, { id: 1, name: "q" })],
        [parent, e(parent, "I", null, { id: 2, name: "p" })],
      ],
      false,
    );
    run(
      coalescer(unique),
      [
        [parent, e(parent, "U", p1, { id: 1, name: "q" })],
        [parent, e(parent, "U", { id: 1, name: "q" }, p1)],
      ],
      true,
    );
    run(
      coalescer(unique),
      [
        [parent, e(parent, "U", p1, { id: 3, name: "p" })],
        [parent, e(parent, "I", null, { id: 1, name: "z" })],
      ],
      false,
    );
  });

  it("folds an insert then a delete, and an update back to the same values, into no-ops", () => {
    const c = coalescer({});
    const ins = e(parent, "I", null, { id: 5, name: "x" });
    const del = e(parent, "D", { id: 5, name: "x" }, null);
    const up1 = e(parent, "U", p1, { id: 1, name: "y" });
    const up2 = e(parent, "U", { id: 1, name: "y" }, p1);
    for (const entry of [ins, up1, del, up2]) expect(c.add(entry, parent)).toBe(true);
    const result = c.result();
    expect(result.rows).toEqual([]);
    expect(result.noop.map((n) => n.entryIds)).toEqual([
      [ins.id, del.id],
      [up1.id, up2.id],
    ]);
  });
});
