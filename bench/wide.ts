/**
 * Section 8 (issue 18): capture on wide rows. The four capture contenders of sections 1-3 (lib/contenders.ts)
 * on a 30-column table with a ~2 KB jsonb document and a ~1 KB text: single-row INSERT, one-column UPDATE,
 * document UPDATE and DELETE by key, alternating the contenders' order from run to run; then the bytes each
 * change adds to the change log, and the memory of pending wide updates captured then drained (memory.ts).
 */
import { IDS, timeWrites, type Measurement } from "./capture.js";
import { openContender, type Contender, type Storage } from "./lib/contenders.js";
import type { RemoteServer } from "./lib/remote.js";
import { WIDE, WIDE_ASSIGNED, WIDE_OPS, WIDE_SINGLE, wideDoc, wideParams, type WideOp } from "./lib/wide-schema.js";
import { runMemory, type MemoryResult } from "./memory.js";

export interface WideConfig {
  storages: Storage[];
  /** Single-row statements per kind per run. */
  statements: number;
  /** Rows whose log bytes are measured (one untimed pass). */
  bytesRows: number;
  runs: number;
  warmup: number;
  root: string;
  syncUrl: string;
  template?: Blob;
  /** Pending one-column updates of wide rows captured then drained in a child process; absent: not measured. */
  memory?: { server: RemoteServer; changes: number; rows: number; templatePath: string };
  log: (line: string) => void;
}

/** Average bytes per change of one kind, in Ominipg's `_sync_queue` (d) and in the trigger's `change_log` (b). */
export interface LogBytes {
  op: WideOp;
  /** pg_column_size of the whole log row. */
  ominipgRow: number;
  /** The row data of the log row: the sum of pg_column_size of its json, jsonb and bytea columns (as stored). */
  ominipgData: number;
  /** The same columns' bytes as text (octet_length; bytea as is): the same measure as `assigned`, no headers or compression. */
  ominipgText: number;
  triggerRow: number;
  /** row_key + row_data. */
  triggerData: number;
  /** The key and the values the statement assigns, as JSON text (octet_length): the baseline of the target. */
  assigned: number;
}

export interface WideResult {
  statements: number;
  measurements: Measurement[];
  bytes: LogBytes[];
  /** The `_sync_queue` columns counted as row data. */
  dataColumns: string[];
  bytesRows: number;
  memory?: MemoryResult;
  memoryRows?: number;
}

export async function runWide(cfg: WideConfig): Promise<WideResult> {
  const n = cfg.statements;
  const params = Array.from({ length: n }, (_, i) => wideParams(i + 1));
  const docs = Array.from({ length: n }, (_, i) => wideDoc(i + 1, 1));
  const write = async (c: Contender, op: WideOp, rows: number) => {
    const sql = WIDE_SINGLE[op];
    for (let id = 1; id <= rows; id++)
      await c.query(
        sql,
        op === "insert" ? params[id - 1] : op === "update1" ? [id, 1] : op === "updateDoc" ? [id, docs[id - 1]] : [id],
      );
  };
  const out: WideResult = { statements: n, measurements: [], bytes: [], dataColumns: [], bytesRows: 0 };
  for (const storage of cfg.storages) {
    cfg.log(`wide: opening the four contenders (${storage})`);
    const contenders: Contender[] = [];
    try {
      for (const id of IDS)
        contenders.push(
          await openContender(id, storage, `${cfg.root}/wide-${storage}`, cfg.syncUrl, cfg.template, WIDE),
        );
      const logged = { changes: 4 * n, after: `${n} wide single-row INSERTs, UPDATEs (2 kinds) and DELETEs` };
      const ms = await timeWrites(contenders, cfg, `wide ${storage}`, WIDE_OPS, logged, (c, op) => write(c, op, n), n);
      for (const op of WIDE_OPS)
        out.measurements.push({ section: "wide", storage, op, work: n, unit: "statement", ms: ms[op] });
      if (out.bytes.length === 0) {
        out.bytesRows = Math.min(n, cfg.bytesRows);
        out.bytes = await logBytes(contenders, out.bytesRows, write);
        out.dataColumns = await dataColumns(contenders.find((c) => c.id === "d")!);
        for (const c of contenders) await c.reset();
      }
    } finally {
      for (const c of contenders) await c.close().catch(() => {});
    }
  }
  if (cfg.memory) {
    const m = cfg.memory;
    out.memoryRows = m.rows;
    out.memory = await runMemory(m.server, {
      storage: "directory",
      changes: m.changes,
      chunk: m.rows,
      root: cfg.root,
      templatePath: m.templatePath,
      workload: "wide-updates",
      log: cfg.log,
    });
  }
  return out;
}

async function dataColumns(d: Contender): Promise<string[]> {
  return (await dataTypes(d)).map((r) => r.name);
}

async function dataTypes(d: Contender): Promise<{ name: string; bytea: boolean }[]> {
  return d.peek<{ name: string; bytea: boolean }>(
    `SELECT attname AS name, atttypid = 'bytea'::regtype AS bytea FROM pg_attribute WHERE attrelid = '_sync_queue'::regclass AND attnum > 0
       AND NOT attisdropped AND atttypid IN ('json'::regtype, 'jsonb'::regtype, 'bytea'::regtype) ORDER BY attnum`,
  );
}

/** One untimed pass over `rows` rows, kind after kind: the log rows each kind added, on b and d. */
async function logBytes(
  contenders: Contender[],
  rows: number,
  write: (c: Contender, op: WideOp, rows: number) => Promise<void>,
): Promise<LogBytes[]> {
  const by = (id: string) => contenders.find((c) => c.id === id)!;
  const [a, b, d] = [by("a"), by("b"), by("d")];
  for (const c of contenders) await c.reset();
  const cols = await dataTypes(d);
  const sum = (f: (c: { name: string; bytea: boolean }) => string) =>
    cols.length ? cols.map((c) => `coalesce(${f(c)}, 0)`).join(" + ") : "0";
  const dataExpr = sum((c) => `pg_column_size(q."${c.name}")`);
  const textExpr = sum((c) => `octet_length(q."${c.name}"${c.bytea ? "" : "::text"})`);
  const maxId = async (c: Contender, table: string) =>
    Number((await c.peek<{ n: string }>(`SELECT coalesce(max(id), 0)::text AS n FROM ${table}`))[0]!.n);
  const assigned = async (op: WideOp) =>
    (
      await a.peek<{ n: number }>(
        `SELECT avg(octet_length(${WIDE_ASSIGNED[op]}::text))::float8 AS n FROM wide w WHERE id <= ${rows}`,
      )
    )[0]!.n;
  const sizes = async (c: Contender, table: string, data: string, after: number, text = "0") => {
    const [r] = await c.peek<{ row: number; data: number; text: number; n: number }>(
      `SELECT avg(pg_column_size(q.*))::float8 AS row, avg(${data})::float8 AS data, avg(${text})::float8 AS text,
              count(*)::int AS n
         FROM ${table} q WHERE id > ${after}`,
    );
    if (r!.n !== rows) throw new Error(`${c.label}: ${r!.n} log rows for ${rows} changes`);
    return r!;
  };
  const out: LogBytes[] = [];
  for (const op of WIDE_OPS) {
    const before = { b: await maxId(b, "change_log"), d: await maxId(d, "_sync_queue") };
    const keyOnly = op === "delete" ? await assigned(op) : 0;
    for (const c of contenders) await write(c, op, rows);
    const base = op === "delete" ? keyOnly : await assigned(op);
    const dq = await sizes(d, "_sync_queue", dataExpr, before.d, textExpr);
    const bq = await sizes(
      b,
      "change_log",
      "coalesce(pg_column_size(q.row_key), 0) + coalesce(pg_column_size(q.row_data), 0)",
      before.b,
    );
    out.push({
      op,
      ominipgRow: dq.row,
      ominipgData: dq.data,
      ominipgText: dq.text,
      triggerRow: bq.row,
      triggerData: bq.data,
      assigned: base,
    });
  }
  return out;
}
