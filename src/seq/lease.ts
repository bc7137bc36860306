import type { TableInfo } from "../core/table.js";
import { LEASE_TABLE } from "../log/tables.js";
import { type LocalAccess } from "../local/access.js";
import { toRanges } from "../core/ranges.js";
import type { Driver } from "../core/driver.js";
import type { Remote } from "../remote/remote.js";
import { quoteLiteral } from "../core/sql.js";
import { ownedSequences, type OwnedSequence } from "./owned.js";

/** Id blocks this client holds, per local sequence. Ranges are inclusive and taken from the remote sequence. */
export const LEASE_DDL = `CREATE TABLE IF NOT EXISTS ${LEASE_TABLE} (
  seq text NOT NULL,
  lo bigint NOT NULL,
  hi bigint NOT NULL,
  PRIMARY KEY (seq, lo)
)`;

/**
 * `sequences: "lease"`: every client mints SERIAL/identity ids only from blocks it reserved on the remote
 * sequence, so two offline clients never mint the same id. Blocks are taken with nextval() on the remote,
 * which no other session can hand out again; the local sequence is pointed at one block at a time
 * (MINVALUE/MAXVALUE), and moved to the next one when it runs out.
 */
export class SequenceLeases {
  constructor(
    private readonly local: LocalAccess,
    private readonly remote: Remote,
    private readonly blockSize: number,
  ) {}

  /** At a successful contact: hold at least two blocks' worth of unused ids per sequence, then apply them. */
  async topUp(tables: TableInfo[]): Promise<void> {
    const owned = await this.local.run((d) => ownedSequences(d, tables));
    for (const s of owned) {
      const unused = await this.local.run((d) => unusedIds(d, s));
      if (unused >= this.blockSize * 2) continue;
      const rows = await this.remote.session((sql) =>
        sql.unsafe<{ v: string }[]>(
          `SELECT nextval(pg_get_serial_sequence($1, $2))::text AS v FROM generate_series(1, $3)`,
          [s.table.sql, s.column, this.blockSize * 2 - unused],
        ),
      );
      const ranges = toRanges(rows.map((r) => Number(r.v)));
      await this.local.run(async (d) => {
        for (let i = 0; i < ranges.length; i += 2) {
          await d.query(`INSERT INTO ${LEASE_TABLE} (seq, lo, hi) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
            s.seq,
            ranges[i],
            ranges[i + 1],
          ]);
        }
      });
    }
    await this.local.run((d) => applyLeases(d, tables));
  }
}

/**
 * Point every leased local sequence at a block it may use. A sequence with no usable block is capped at
 * its current value, so the next id fails instead of colliding.
 */
export async function applyLeases(d: Driver, tables: TableInfo[]): Promise<void> {
  for (const s of await ownedSequences(d, tables)) await pointAtBlock(d, s);
}

async function pointAtBlock(d: Driver, s: OwnedSequence): Promise<void> {
  const last = s.last ?? Number.MIN_SAFE_INTEGER;
  await d.query(`DELETE FROM ${LEASE_TABLE} WHERE seq = $1 AND hi <= $2`, [s.seq, last]);
  const { rows } = await d.query<{ lo: number; hi: number }>(
    `SELECT lo, hi FROM ${LEASE_TABLE} WHERE seq = $1 ORDER BY lo`,
    [s.seq],
  );
  const current = rows.find((r) => Number(r.lo) <= last && last < Number(r.hi));
  if (current) {
    await d.exec(`ALTER SEQUENCE ${s.seq} MAXVALUE ${Number(current.hi)}`);
    return;
  }
  const next = rows.find((r) => Number(r.lo) > last);
  if (next) {
    const lo = Number(next.lo);
    await d.exec(
      `ALTER SEQUENCE ${s.seq} MINVALUE ${Math.min(lo, 1) - 1} MAXVALUE ${Number(next.hi)} RESTART WITH ${lo}`,
    );
    return;
  }
  // Nothing leased: cap the sequence where it is; nextval() fails until a sync leases a block.
  const cap = Math.max(s.last ?? 1, 1);
  await d.exec(`ALTER SEQUENCE ${s.seq} MINVALUE ${Math.min(cap, 1) - 1} MAXVALUE ${cap}`);
  await d.query(`SELECT setval(${quoteLiteral(s.seq)}::regclass, ${cap}, true)`);
}

async function unusedIds(d: Driver, s: OwnedSequence): Promise<number> {
  const last = s.last ?? Number.MIN_SAFE_INTEGER;
  const { rows } = await d.query<{ lo: number; hi: number }>(
    `SELECT lo, hi FROM ${LEASE_TABLE} WHERE seq = $1 AND hi > $2`,
    [s.seq, last],
  );
  return rows.reduce((n, r) => n + Number(r.hi) - Math.max(Number(r.lo), last + 1) + 1, 0);
}

/** Drop every leased block (the blocks of a copied database belong to the original). */
export async function forgetLeases(d: Driver): Promise<void> {
  const { rows } = await d.query<{ found: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS found`, [LEASE_TABLE], {
    prepare: false,
  });
  if (rows[0]?.found) await d.exec(`DELETE FROM ${LEASE_TABLE}`);
}

/** How many leased blocks are left. */
export async function leasedBlocks(d: Driver): Promise<number> {
  const { rows } = await d.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${LEASE_TABLE}`, [], {
    prepare: false,
  });
  return rows[0]!.n;
}
