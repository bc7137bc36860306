/**
 * Sections 1-3: capture cost of single-row statements, bulk statements and transactions, for the four
 * contenders (see lib/contenders.ts), alternating the contenders' order from run to run.
 */
import { LABELS, openContender, type Contender, type ContenderId, type Storage } from "./lib/contenders.js";
import { SINGLE, bulk, insertParams } from "./lib/schema.js";
import { median, now, rotate } from "./lib/stats.js";

export const IDS: ContenderId[] = ["a", "b", "c", "d"];

export interface Measurement {
  section: "single" | "bulk" | "tx" | "wide";
  storage: Storage;
  op: string;
  /** Statements (single, tx) or rows (bulk) per timed run. */
  work: number;
  /** Statements per unit of work timed (tx: statements per transaction). */
  unit: "statement" | "row" | "transaction";
  /** Milliseconds per timed run, per contender, in run order. */
  ms: Record<ContenderId, number[]>;
}

export interface CaptureConfig {
  storages: Storage[];
  bulkStorages: Storage[];
  singleStatements: number;
  bulkRows: number;
  transactions: number;
  statementsPerTransaction: number;
  runs: number;
  warmup: number;
  root: string;
  syncUrl: string;
  template?: Blob;
  /** Capture parts to leave out: "single", "bulk", "tx". */
  skip?: Set<string>;
  log: (line: string) => void;
}

export interface CaptureResult {
  measurements: Measurement[];
  settings: Record<Storage, Record<ContenderId, Record<string, string>>>;
}

export function emptyMs(): Record<ContenderId, number[]> {
  return { a: [], b: [], c: [], d: [] };
}

export async function runCapture(cfg: CaptureConfig): Promise<CaptureResult> {
  const measurements: Measurement[] = [];
  const settings = {} as CaptureResult["settings"];
  for (const storage of cfg.storages) {
    cfg.log(`capture: opening the four contenders (${storage})`);
    const contenders: Contender[] = [];
    try {
      for (const id of IDS)
        contenders.push(await openContender(id, storage, `${cfg.root}/${storage}`, cfg.syncUrl, cfg.template));
      settings[storage] = {} as Record<ContenderId, Record<string, string>>;
      for (const c of contenders) settings[storage][c.id] = await c.settings();

      const skip = cfg.skip ?? new Set<string>();
      if (!skip.has("single")) measurements.push(...(await single(contenders, storage, cfg)));
      if (!skip.has("bulk") && cfg.bulkStorages.includes(storage))
        measurements.push(...(await bulkStatements(contenders, storage, cfg)));
      if (!skip.has("tx")) measurements.push(await transactions(contenders, storage, cfg));
    } finally {
      for (const c of contenders) await c.close().catch(() => {});
    }
  }
  return { measurements, settings };
}

/** Check the change log holds exactly what the contender should have captured: a bench that captured nothing would lie. */
export async function expectLogged(c: Contender, expected: number, what: string): Promise<void> {
  const want = c.id === "b" || c.id === "d" ? expected : 0;
  const got = await c.logged();
  if (got !== want) throw new Error(`${LABELS[c.id]} (${c.id}) logged ${got} changes after ${what}, expected ${want}`);
}

const OPS = ["insert", "update", "delete"] as const;

/**
 * Time workloads `ops` (e.g. an INSERT, an UPDATE and a DELETE: `write`) on every contender, one op after the
 * other, in an order of contenders rotated from run to run, after resetting them; checks what each logged after
 * every run. `perStatement` shows per-statement times.
 */
export async function timeWrites<O extends string>(
  contenders: Contender[],
  cfg: Pick<CaptureConfig, "runs" | "warmup" | "log">,
  label: string,
  ops: readonly O[],
  logged: { changes: number; after: string },
  write: (c: Contender, op: O) => Promise<void>,
  perStatement?: number,
): Promise<Record<O, Record<ContenderId, number[]>>> {
  const ms = Object.fromEntries(ops.map((op) => [op, emptyMs()])) as Record<O, Record<ContenderId, number[]>>;
  const total = cfg.warmup + cfg.runs;
  for (let run = 0; run < total; run++) {
    for (const c of contenders) await c.reset();
    const order = rotate(contenders, run);
    for (const op of ops) {
      for (const c of order) {
        const start = now();
        await write(c, op);
        const elapsed = now() - start;
        if (run >= cfg.warmup) ms[op][c.id].push(elapsed);
      }
    }
    for (const c of contenders) await expectLogged(c, logged.changes, logged.after);
    cfg.log(
      `${label}: run ${run + 1}/${total}${run < cfg.warmup ? " (warm-up)" : ""}: ${summary(ms, run - cfg.warmup, perStatement)}`,
    );
  }
  for (const c of contenders) await c.reset();
  return ms;
}

async function single(contenders: Contender[], storage: Storage, cfg: CaptureConfig): Promise<Measurement[]> {
  const n = cfg.singleStatements;
  const logged = { changes: 3 * n, after: `${n} single-row INSERTs, UPDATEs and DELETEs` };
  const ms = await timeWrites(
    contenders,
    cfg,
    `capture/single ${storage}`,
    OPS,
    logged,
    async (c, op) => {
      const sql = SINGLE[op];
      if (op === "insert") for (let id = 1; id <= n; id++) await c.query(sql, insertParams(id));
      else if (op === "update") for (let id = 1; id <= n; id++) await c.query(sql, [id, 1]);
      else for (let id = 1; id <= n; id++) await c.query(sql, [id]);
    },
    n,
  );
  return OPS.map((op) => ({
    section: "single",
    storage,
    op: op.toUpperCase(),
    work: n,
    unit: "statement",
    ms: ms[op],
  }));
}

async function bulkStatements(contenders: Contender[], storage: Storage, cfg: CaptureConfig): Promise<Measurement[]> {
  const n = cfg.bulkRows;
  const sqls = bulk(n);
  const logged = { changes: 3 * n, after: `a bulk INSERT, UPDATE and DELETE of ${n} rows` };
  const ms = await timeWrites(contenders, cfg, `capture/bulk ${storage}`, OPS, logged, async (c, op) => {
    await c.query(sqls[op]);
  });
  return [
    {
      section: "bulk",
      storage,
      op: `INSERT ... SELECT ${n.toLocaleString("en-US")} rows`,
      work: n,
      unit: "row",
      ms: ms.insert,
    },
    { section: "bulk", storage, op: `UPDATE ${n.toLocaleString("en-US")} rows`, work: n, unit: "row", ms: ms.update },
    { section: "bulk", storage, op: `DELETE ${n.toLocaleString("en-US")} rows`, work: n, unit: "row", ms: ms.delete },
  ];
}

/** Each transaction: `k` statements, alternately an INSERT of a new row and an UPDATE of the row just inserted. */
async function transactions(contenders: Contender[], storage: Storage, cfg: CaptureConfig): Promise<Measurement> {
  const t = cfg.transactions;
  const k = cfg.statementsPerTransaction;
  const ms = emptyMs();
  const total = cfg.warmup + cfg.runs;
  for (let run = 0; run < total; run++) {
    for (const c of contenders) await c.reset();
    for (const c of rotate(contenders, run)) {
      const start = now();
      let id = 0;
      for (let i = 0; i < t; i++) {
        await c.transaction(async (q) => {
          for (let s = 0; s < k; s += 2) {
            id++;
            await q(SINGLE.insert, insertParams(id));
            if (s + 1 < k) await q(SINGLE.update, [id, 1]);
          }
        });
      }
      const elapsed = now() - start;
      if (run >= cfg.warmup) ms[c.id].push(elapsed);
    }
    for (const c of contenders) await expectLogged(c, t * k, `${t} transactions of ${k} statements`);
    cfg.log(`capture/tx ${storage}: run ${run + 1}/${total}${run < cfg.warmup ? " (warm-up)" : ""}`);
  }
  for (const c of contenders) await c.reset();
  return { section: "tx", storage, op: `${k} statements per transaction()`, work: t, unit: "transaction", ms };
}

function summary(ms: Record<string, Record<ContenderId, number[]>>, index: number, perStatement?: number): string {
  if (index < 0) return "";
  return Object.entries(ms)
    .map(
      ([op, byId]) =>
        `${op} ` +
        IDS.map((id) => {
          const v = byId[id][index];
          return v === undefined
            ? ""
            : perStatement
              ? `${id}=${((v * 1000) / perStatement).toFixed(0)}µs`
              : `${id}=${v.toFixed(0)}ms`;
        }).join(" "),
    )
    .join(" | ");
}

/** Median over runs of a per-run ratio: how many times faster `x` is than `base` (time of base / time of x). */
export function speedup(m: Measurement, x: ContenderId, base: ContenderId): number {
  const ratios = m.ms[x].map((t, i) => (m.ms[base][i] ?? Number.NaN) / t);
  return median(ratios);
}
