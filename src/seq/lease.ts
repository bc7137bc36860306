import type { TableInfo } from "../core/table.js";
import { LEASE_TABLE } from "../log/tables.js";
import { type LocalAccess } from "../local/access.js";
import { toRuns } from "../core/ranges.js";
import type { Driver } from "../core/driver.js";
import type { Remote } from "../remote/remote.js";
import { quoteLiteral } from "../core/sql.js";
import type { ConnectOptions } from "../core/options.js";
import type { OminipgWarning } from "../core/warnings.js";
import { OminipgError } from "../core/errors.js";
import { ownedSequences, type OwnedSequence } from "./owned.js";
import { takeIds } from "./sequences.js";

/** Id blocks this client holds, per local sequence. Ranges are inclusive and taken from the remote sequence. */
export const LEASE_DDL = `CREATE TABLE IF NOT EXISTS ${LEASE_TABLE} (
  seq text NOT NULL,
  lo bigint NOT NULL,
  hi bigint NOT NULL,
  PRIMARY KEY (seq, lo)
)`;

/** How a client mints SERIAL / identity ids (`sequences`, core/options.ts). */
export type SequencesMode = NonNullable<ConnectOptions["sequences"]>;

/**
 * Leased id blocks: every client mints SERIAL/identity ids from blocks it reserved on the remote sequence,
 * so two offline clients never mint the same id. Blocks are taken with nextval() on the remote, which no
 * other session can hand out again; the local sequence is pointed at one block at a time, and moved to the
 * next one when it runs out.
 * - `"lease"` (strict): a sequence is capped at its block (MINVALUE/MAXVALUE): without a leased id left (or
 *   before the first lease) an insert fails rather than mint an id that could collide;
 * - `"auto"` (the default): never capped, so an insert never fails for want of a lease: ids are minted
 *   locally until the first lease succeeds, and past the leased blocks when more are used between two syncs
 *   than they held. Those can collide with other clients' ids (a collision is refused, never written over:
 *   push/collision.ts); failed leases and overruns are reported as warnings;
 * - `"advance"`: no leases (the remote sequence is only moved past pushed ids); warns once that ids of
 *   tables keyed by a sequence can collide.
 */
export class SequenceLeases {
  /** Warnings already given (code and subject): each once per client. */
  readonly #warned = new Set<string>();

  constructor(
    private readonly local: LocalAccess,
    private readonly remote: Remote,
    private readonly blockSize: number,
    readonly mode: SequencesMode = "lease",
  ) {}

  /** Overruns found when the database was opened (after a crash, a sequence skips up to 32 values): told at the next sync. */
  #opened: OwnedSequence[] = [];

  /** Point the sequences at their blocks as the database opens; overruns found are warned of at the next sync. */
  async open(d: Driver, tables: TableInfo[]): Promise<void> {
    this.#opened = await applyLeases(d, tables, this.strict);
  }

  /** The synced tables whose sequences were capped ("lease"), and the table map they were last checked in. */
  readonly #capped = new Set<number>();
  #checked: Map<number, TableInfo> | undefined;

  /**
   * "lease": cap the sequences of synced tables not seen before, as soon as the catalog shows them (a table made
   * after connect, by DDL through query(), minted ids nobody leased until the next sync).
   */
  async capNew(d: Driver, tables: Map<number, TableInfo>): Promise<void> {
    if (!this.strict || tables === this.#checked) return;
    this.#checked = tables;
    const fresh = [...tables.values()].filter((t) => !this.#capped.has(t.oid));
    for (const t of fresh) this.#capped.add(t.oid);
    if (fresh.length > 0) await applyLeases(d, fresh);
  }

  /**
   * "lease": a statement that ran out of leased ids moves the sequence to its next block and runs again (true), or
   * fails with SEQUENCE_LEASE_EXHAUSTED when no block is left. A 2200H no leased sequence raised (another
   * sequence's own MAXVALUE) is not this one's to recover (false: PostgreSQL's error stands).
   */
  async recover(d: Driver, synced: () => Promise<TableInfo[]>, err: unknown): Promise<boolean | Error> {
    if (!this.strict || (err as { code?: string })?.code !== "2200H") return false;
    const tables = await synced();
    const raised = await raisedByLeased(d, tables, err);
    if (raised.length === 0) return false;
    await applyLeases(d, tables);
    if ((await leasedBlocks(d, raised)) > 0) return true;
    return new OminipgError(
      "SEQUENCE_LEASE_EXHAUSTED",
      `no leased ids are left for a sequence of a synced table: sync() with the remote to lease more (sequences: "lease", leaseSize ${this.blockSize})`,
      { cause: err },
    );
  }

  /** Whether blocks are leased and applied ("auto" and "lease"). */
  get leasing(): boolean {
    return this.mode !== "advance";
  }

  /** "lease": a sequence without a leased id left fails instead of minting one. */
  get strict(): boolean {
    return this.mode === "lease";
  }

  /**
   * At a successful contact: top each sequence up to two blocks' worth of unused ids, then apply them. "lease"
   * tops up below two blocks; "auto" below one, since a lease not adjacent to the ids left abandons them
   * (followRun): at most a block's worth, once per block used, not at every sync.
   * Returns the warnings not given before. With "lease" a failure to lease is thrown; with "auto" it is a
   * warning, and ids are minted locally until a lease succeeds.
   */
  async topUp(tables: TableInfo[]): Promise<OminipgWarning[]> {
    if (!this.leasing) return this.#once(advanceWarnings(tables));
    const all = await this.local.run((d) => ownedSequences(d, tables));
    const warnings: OminipgWarning[] = all.filter((s) => s.increment < 0n).map(descendingWarning);
    for (const s of all.filter((s) => s.increment > 0n)) {
      const unused = await this.local.run((d) => unusedIds(d, s));
      if (unused >= BigInt(this.strict ? this.blockSize * 2 : this.blockSize)) continue;
      let values: bigint[];
      try {
        values = await this.remote.transaction((sql) => takeIds(sql, s, this.blockSize * 2 - Number(unused)));
      } catch (err) {
        if (this.strict) throw err;
        warnings.push({
          code: "SEQUENCE_LEASE_FAILED",
          table: `${s.table.schema}.${s.table.name}`,
          message:
            `no ids could be leased for ${s.table.sql}.${s.column} (${(err as Error)?.message ?? String(err)}): ` +
            `they are minted locally until a lease succeeds, and may collide with ids of other clients or the ` +
            `server (a collision is refused, never written over)`,
        });
        continue;
      }
      const ranges = toRuns(values, s.increment);
      await this.local.run(async (d) => {
        for (let i = 0; i < ranges.length; i += 2) {
          await d.query(`INSERT INTO ${LEASE_TABLE} (seq, lo, hi) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, [
            s.seq,
            String(ranges[i]),
            String(ranges[i + 1]),
          ]);
        }
      });
    }
    const overruns = [...this.#opened, ...(await this.local.run((d) => applyLeases(d, tables, this.strict)))];
    this.#opened = [];
    for (const s of overruns) {
      warnings.push({
        code: "SEQUENCE_LEASE_OVERRUN",
        table: `${s.table.schema}.${s.table.name}`,
        message:
          `${s.table.sql}.${s.column} handed out more ids since the last sync than its leased blocks held ` +
          `(up to ${s.last}): those past the blocks may collide with other clients' ids (a collision is ` +
          `refused, never written over); raise leaseSize (${this.blockSize}) or sync more often`,
      });
    }
    return this.#once(warnings);
  }

  #once(warnings: OminipgWarning[]): OminipgWarning[] {
    return warnings.filter((w) => {
      const key = `${w.code} ${w.table ?? ""}`;
      if (this.#warned.has(key)) return false;
      this.#warned.add(key);
      return true;
    });
  }
}

/** `sequences: "advance"`: one warning per synced table whose key a local sequence generates. */
function advanceWarnings(tables: TableInfo[]): OminipgWarning[] {
  return tables
    .filter((t) => t.keyFromSequence && !t.uncapturable)
    .map((t) => ({
      code: "SEQUENCE_IDS_MAY_COLLIDE",
      table: `${t.schema}.${t.name}`,
      message:
        `sequences: "advance": the keys of ${t.sql} come from this client's own sequence, so another client ` +
        `or the server can mint the same ones; such a collision is refused (onReject), never written over. ` +
        `The default, sequences: "auto", leases each client disjoint blocks of ids`,
    }));
}

/** A sequence counting down is never leased (blocks are ascending runs): its ids can collide. */
function descendingWarning(s: OwnedSequence): OminipgWarning {
  return {
    code: "SEQUENCE_IDS_MAY_COLLIDE",
    table: `${s.table.schema}.${s.table.name}`,
    message:
      `${s.table.sql}.${s.column} comes from a descending sequence, which is never leased: another client or ` +
      `the server can mint the same ids; such a collision is refused (onReject), never written over`,
  };
}

/**
 * Point every leased local sequence at a block it may use. `strict`: a sequence is capped at its block, and
 * one with no usable block at its current value, so the next id fails instead of colliding; otherwise
 * sequences are never capped. Returns (not strict) the sequences that handed out ids past their blocks.
 */
export async function applyLeases(d: Driver, tables: TableInfo[], strict = true): Promise<OwnedSequence[]> {
  const overruns: OwnedSequence[] = [];
  for (const s of await ownedSequences(d, tables)) {
    if (s.increment < 0n) continue; // never leased (descendingWarning)
    if (await pointAtBlock(d, s, strict)) overruns.push(s);
  }
  return overruns;
}

/** A leased block: ids lo..hi (int8), inclusive, the sequence's INCREMENT apart. */
interface Block {
  lo: bigint;
  hi: bigint;
}

/** This client's blocks of a sequence, in order. */
async function heldBlocks(d: Driver, s: OwnedSequence): Promise<Block[]> {
  const { rows } = await d.query<{ l: string; h: string }>(
    `SELECT lo::text AS l, hi::text AS h FROM ${LEASE_TABLE} WHERE seq = $1 ORDER BY lo`,
    [s.seq],
  );
  return rows.map((r) => ({ lo: BigInt(r.l), hi: BigInt(r.h) }));
}

const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

/** Point the sequence at its blocks; whether (not strict) it had gone past them. */
async function pointAtBlock(d: Driver, s: OwnedSequence, strict: boolean): Promise<boolean> {
  const held = await heldBlocks(d, s);
  const last = s.last;
  if (last !== null)
    await d.query(`DELETE FROM ${LEASE_TABLE} WHERE seq = $1 AND hi <= $2::text::int8`, [s.seq, String(last)]);
  const rows = last === null ? held : held.filter((r) => r.hi > last);
  if (!strict) {
    await followRun(d, s, rows);
    return last !== null && held.some((r) => r.hi < last) && !held.some((r) => holds(r, last, s.increment));
  }
  // Capped at the end of the run of adjacent blocks it is in: a transaction's inserts may span them.
  const current = last === null ? -1 : rows.findIndex((r) => r.lo <= last && last < r.hi);
  // NO CYCLE: at its cap a CYCLE sequence would start again from MINVALUE, inside other clients' blocks.
  if (current >= 0) {
    await d.exec(`ALTER SEQUENCE ${s.seq} NO CYCLE MAXVALUE ${runEnd(rows, current, s.increment)}`);
    return false;
  }
  const next = last === null ? 0 : rows.findIndex((r) => r.lo > last);
  if (next >= 0 && rows[next]) {
    await restart(d, s, rows[next].lo, `NO CYCLE MAXVALUE ${runEnd(rows, next, s.increment)}`);
    return false;
  }
  // Nothing leased: cap the sequence where it is (before its first value, at its START: a cap below START is
  // refused; MINVALUE below the cap, and not below its type's least value: one id later there); nextval() fails
  // until a sync leases a block.
  const cap = (last ?? s.start) > s.floor ? (last ?? s.start) : s.floor + 1n;
  await d.exec(`ALTER SEQUENCE ${s.seq} NO CYCLE MINVALUE ${min(s.min, cap - 1n)} MAXVALUE ${cap}`);
  await d.query(`SELECT setval(${quoteLiteral(s.seq)}::regclass, ${cap}, true)`);
  return false;
}

/**
 * "auto" (never capped): from its next value on, the sequence must run through leased ids only, up to the end of
 * what it holds, so it must sit in the final run of adjacent blocks. A later lease that is not adjacent (others took
 * ids in between) would otherwise let it run on from its block into their ids. If it is not in that run, it restarts
 * at the run's start and the blocks before are dropped: their unused ids are abandoned. Uncontended leases are
 * adjacent, so then nothing is.
 */
async function followRun(d: Driver, s: OwnedSequence, rows: Block[]): Promise<void> {
  let first = rows.length - 1;
  while (first > 0 && rows[first - 1]!.hi + s.increment === rows[first]!.lo) first--;
  const run = rows[first];
  if (!run) return uncap(d, s, s.last ?? s.start);
  const end = rows[rows.length - 1]!;
  if (s.last !== null && holds({ lo: run.lo, hi: end.hi }, s.last + s.increment, s.increment))
    return uncap(d, s, end.hi);
  await d.query(`DELETE FROM ${LEASE_TABLE} WHERE seq = $1 AND lo < $2::text::int8`, [s.seq, String(run.lo)]);
  // A MAXVALUE below the run is a cap a strict lease left (the remote, of the same MAXVALUE, hands out no id past it).
  await restart(d, s, run.lo, s.max < run.lo ? "NO MAXVALUE" : "");
}

/** The last id of the run of adjacent blocks from rows[i] on. */
function runEnd(rows: Block[], i: number, increment: bigint): bigint {
  while (rows[i + 1] && rows[i + 1]!.lo === rows[i]!.hi + increment) i++;
  return rows[i]!.hi;
}

/** Whether `id` is one of the block's ids. */
function holds(r: Block, id: bigint, increment: bigint): boolean {
  return r.lo <= id && id <= r.hi && (id - r.lo) % increment === 0n;
}

/** Restart the sequence at `at` (MINVALUE lowered to it where it is below). */
async function restart(d: Driver, s: OwnedSequence, at: bigint, cap: string): Promise<void> {
  await d.exec(`ALTER SEQUENCE ${s.seq} MINVALUE ${min(s.min, at)} ${cap} RESTART WITH ${at}`);
}

/** Lift a cap a strict lease left at `at` (a database that used `sequences: "lease"` before). */
async function uncap(d: Driver, s: OwnedSequence, at: bigint): Promise<void> {
  const { rows } = await d.query<{ capped: boolean }>(
    `SELECT seqmax <= $2::text::int8 AS capped FROM pg_sequence WHERE seqrelid = $1::regclass`,
    [s.seq, String(at)],
    { prepare: false },
  );
  if (rows[0]?.capped) await d.exec(`ALTER SEQUENCE ${s.seq} NO MAXVALUE`);
}

/** How many ids the held blocks have left after the sequence's last value. */
async function unusedIds(d: Driver, s: OwnedSequence): Promise<bigint> {
  const last = s.last;
  const step = s.increment;
  return (await heldBlocks(d, s)).reduce((n, r) => {
    const used = last === null || last < r.lo ? 0n : (min(last, r.hi) - r.lo) / step + 1n;
    return n + (r.hi - r.lo) / step + 1n - used;
  }, 0n);
}

/** Drop every leased block (the blocks of a copied database belong to the original). */
export async function forgetLeases(d: Driver): Promise<void> {
  const { rows } = await d.query<{ found: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS found`, [LEASE_TABLE], {
    prepare: false,
  });
  if (rows[0]?.found) await d.exec(`DELETE FROM ${LEASE_TABLE}`);
}

/**
 * Which of `tables`' sequences (those leases cap) may be the one `err` (a 2200H) names: PostgreSQL names it, without
 * its schema, in the message; a message worded otherwise (another locale) may be any of them.
 */
async function raisedByLeased(d: Driver, tables: TableInfo[], err: unknown): Promise<string[]> {
  const name = /sequence "(.+)" \(/.exec((err as Error).message ?? "")?.[1];
  const seqs = (await ownedSequences(d, tables)).map((s) => s.seq);
  if (name === undefined) return seqs;
  const { rows } = await d.query<{ q: string }>(
    `SELECT s.q FROM json_array_elements_text($1::text::json) AS s(q) JOIN pg_class AS c ON c.oid = s.q::regclass
      WHERE c.relname = $2`,
    [JSON.stringify(seqs), name],
    { prepare: false },
  );
  return rows.map((r) => r.q);
}

/** How many leased blocks `seqs` have left. */
async function leasedBlocks(d: Driver, seqs: string[]): Promise<number> {
  const { rows } = await d.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM ${LEASE_TABLE} WHERE seq = ANY ($1::text[])`,
    [seqs],
    { prepare: false },
  );
  return rows[0]!.n;
}
