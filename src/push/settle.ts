import { type Catalog } from "../capture/catalog.js";
import type { TableInfo } from "../core/table.js";
import { type LocalAccess } from "../local/access.js";
import { keyText } from "../core/key-text.js";
import { keyImage, keyLabel } from "../core/key-text.js";
import type { RowOp } from "./coalesce.js";
import { joinImage, splitImage, type Image } from "../core/image.js";
import { ConfigError, SyncError } from "../core/errors.js";
import { inReplicaTransaction } from "../local/transaction.js";
import { encodeImage, fields } from "../core/json-text.js";
import { conflictEvent, recordConflict, type ConflictRecord } from "../log/conflicts.js";
import { rowImageSql } from "../log/capture.js";
import { imageText, imageToRow, rowToImage } from "../core/row.js";
import type {
  ConflictEvent,
  ConflictOptions,
  ConflictResolutionKind,
  ConflictStrategy,
  Resolution,
} from "../core/conflicts.js";
import { changedColumns, merge, overwrite } from "../core/conflict-rule.js";
import { fillersOf, wholeImage } from "./complete.js";
import { rowNow, setLocalRow } from "./local-row.js";

/**
 * A pushed change the remote row no longer matched: the change as captured, and the remote row (carried `rowJsonb`
 * text, statements.ts: remoteText); `taken`: for a key change, the row the remote holds at the new key (null:
 * none).
 */
export interface FoundConflict {
  op: RowOp;
  remote: string | null;
  taken?: string | null;
  /** The write an earlier round settled this change into (its row is what the local row holds now). */
  settled?: RowOp | undefined;
}

/** Where both sides go: a row, no row, or (skip) nowhere: nothing is pushed and the local row stays. */
type Target = Image | null | "skip";

interface Settled {
  table: TableInfo;
  op: RowOp;
  base: Image | null;
  local: Image | null;
  remote: Image | null;
  resolution: ConflictResolutionKind;
  target: Target;
  /** The local row now, where an earlier round set it (else `local`). */
  now?: Image | null;
  /**
   * A key change onto a key the remote holds for another row (`remote`, decided on as an insert of that key
   * would be): the remote row at the old key (null: none) and, when the remote's row keeps the new key (the key
   * change undone), the row the old key ends with (`back`: the remote's, or for a merge the remote's with the
   * local change's other columns merged in; null: none).
   */
  moved?: { from: Image | null; back?: Image | null; before: Image | null };
}

/**
 * Settles the conflicts a push found, by the table's strategy: decides the row both sides end with, writes
 * it to the local row (uncaptured) and records every conflict in `_ominipg_conflicts`, in one local
 * transaction, before anything is pushed; then says what to push instead of each change.
 */
export class ConflictSettler {
  /**
   * Changes (by first log entry) whose batch statement found a key taken while it ran, and how often: a race
   * once, a row this role cannot see when it happens again (push/collision.ts). Kept across syncs.
   */
  readonly races = new Map<number, number>();

  constructor(
    private readonly local: LocalAccess,
    private readonly options: ConflictOptions | undefined,
    private readonly emit: (event: ConflictEvent) => void,
  ) {}

  /** A name in `sync.conflicts.tables` that names no synced table is a typo that would silently not apply. */
  checkTables(catalog: Catalog): void {
    const options = this.options;
    if (typeof options !== "object" || !options.tables) return;
    const synced = [...catalog.tables.values()].filter((t) => !t.uncapturable);
    for (const name of Object.keys(options.tables)) {
      if (!synced.some((t) => name === t.name || name === `${t.schema}.${t.name}`)) {
        throw new ConfigError(`sync.conflicts.tables names "${name}", which is not a synced table`);
      }
    }
  }

  strategyFor(table: TableInfo): ConflictStrategy {
    const options = this.options;
    if (options === undefined) return "overwrite";
    if (typeof options !== "object") return options;
    return (
      options.tables?.[`${table.schema}.${table.name}`] ??
      options.tables?.[table.name] ??
      options.default ??
      "overwrite"
    );
  }

  /**
   * Why a key change onto a key the remote holds for another row is not settled by a strategy (undefined: it
   * is). Two records where the key comes from a sequence (as for an insert: collision.ts); and where foreign
   * keys reference the table and the remote still has a row at the old key (`remote`), since writing the new
   * key's row over and deleting the old one would not take the old row's children along, as the key change
   * did locally (with no row at the old key, nothing is deleted or put back: the new key's row is settled alone).
   */
  async unsettledMove(op: RowOp, remote: string | null): Promise<string | undefined> {
    const t = op.table;
    if (t.keyFromSequence) return "by a strategy: its key comes from a local sequence, so they are two records";
    if (remote === null) return undefined;
    const { rows } = await this.local.run((d) =>
      d.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_constraint WHERE contype = 'f' AND confrelid = $1`, [
        t.oid,
      ]),
    );
    if (rows[0]!.n > 0) return `by a strategy: foreign keys reference ${t.sql}, and its rows there would not follow`;
    return undefined;
  }

  /** What to push instead of each conflicting change (none: nothing). */
  async settle(found: FoundConflict[]): Promise<RowOp[][]> {
    // Partial images (an update that logged only what it assigned) are made whole (complete.ts: fillersOf).
    const theirs = await this.#canonical(
      found.map(({ op, remote }) => ({ table: op.table, text: remote })),
      true,
    );
    const taken = await this.#canonical(
      found.map(({ op, taken }) => ({ table: op.table, text: taken ?? null })),
      true,
    );
    const rows = await this.local.run((d) =>
      fillersOf(
        d,
        found.map((f) => f.op),
        theirs,
      ),
    );
    const images = await this.#canonical(
      found.flatMap(({ op }, i) => {
        const row = rows[i];
        const base = op.base && (row ? wholeImage(row, op.base) : op.base);
        const local = op.kind === "delete" || row === null ? null : row ? wholeImage(row, op.image) : op.image;
        return [
          { table: op.table, text: base && encodeImage(op.table, base) },
          { table: op.table, text: local && encodeImage(op.table, local) },
        ];
      }),
    );
    const settled: Settled[] = [];
    for (let i = 0; i < found.length; i++) {
      const { op, settled: earlier } = found[i]!;
      const [base, local, remote] = [images[2 * i] ?? null, images[2 * i + 1] ?? null, theirs[i] ?? null];
      const now = earlier && { now: earlier.kind === "delete" ? null : earlier.image };
      const other = taken[i] ?? null;
      // A key change onto a key the remote holds: for that key, the moved row meets another row, as an insert would.
      if (other && local) {
        const decided = await this.#decide(op.table, null, local, other);
        const back =
          decided.resolution === "remote"
            ? remote
            : decided.resolution === "merge" // the local change's other columns, at the old key
              ? merge(op.table, base, base && new Map([...local, ...keyImage(op.table, base)]), remote)
              : undefined;
        settled.push({
          table: op.table,
          op,
          base: null,
          local,
          remote: other,
          ...now,
          ...decided,
          moved: { from: remote, back, before: base },
        });
        continue;
      }
      settled.push({
        table: op.table,
        op,
        base,
        local,
        remote,
        ...now,
        ...(await this.#decide(op.table, base, local, remote)),
      });
    }
    await this.#canonicalTargets(settled);

    const records: ConflictRecord[] = settled.map((s) => ({
      origin: "push",
      schema: s.table.schema,
      table: s.table.name,
      key: joinImage(keyImage(s.table, (s.base ?? s.local)!)),
      queueId: s.op.firstId,
      // A moved row's record keeps the row before the key change (decided on without: as an insert of the new key).
      base: imageText(s.moved ? s.moved.before : s.base),
      local: imageText(s.local),
      remote: imageText(s.remote),
      resolution: s.resolution,
      resolved: s.target === "skip" ? null : imageText(s.target),
    }));
    await this.local.run((d) =>
      inReplicaTransaction(d, async () => {
        for (const [i, s] of settled.entries()) {
          if (s.target === "skip") continue;
          await setLocalRow(d, s.table, s.now !== undefined ? s.now : s.local, s.target);
          // Generated columns as the row now computes them (the target has the remote's, from before the write).
          if (s.target && s.table.columns.some((c) => c.generated))
            records[i]!.resolved = await rowNow(d, s.table, s.target);
          // The key change undone: the old key's row back (unless the local table has a row there again: a later
          // change, pushed next).
          if (s.moved?.back) await setLocalRow(d, s.table, null, s.moved.back, false);
        }
        for (const r of records) await recordConflict(d, r);
      }),
    );
    for (const r of records) this.emit(conflictEvent(r));
    return settled.map((s) => {
      if (s.target === "skip") return [];
      if (!s.moved) return present([pushOf(s.op, s.remote, s.target)]);
      const { from, back } = s.moved;
      // Undone: the old key's row as settled (nothing to push for remote-wins). Else the new key's row written
      // over (its key is the same), and the old key's row deleted.
      if (back !== undefined) return present([pushOf(s.op, from, back)]);
      return present([from && pushOf(s.op, from, null), pushOf(s.op, s.remote, s.target)]);
    });
  }

  /**
   * An insert whose key a local sequence generated met a remote row this client never saw (push/collision.ts):
   * no strategy settles it. Both rows are recorded (resolution "rejected", nothing resolved) and emitted;
   * neither side is changed. `remote` is a row this role could SELECT (the conflict check found it).
   */
  async recordRejected(op: RowOp, remote: string): Promise<void> {
    const [local] = await this.#canonical([
      { table: op.table, text: op.kind === "delete" ? null : encodeImage(op.table, op.image) },
    ]);
    const [theirs] = await this.#canonical([{ table: op.table, text: remote }], true);
    const record: ConflictRecord = {
      origin: "push",
      schema: op.table.schema,
      table: op.table.name,
      key: joinImage(keyImage(op.table, local!)),
      queueId: op.firstId,
      base: null,
      local: imageText(local ?? null),
      remote: imageText(theirs ?? null),
      resolution: "rejected",
      resolved: null,
    };
    await this.local.run((d) => recordConflict(d, record));
    this.emit(conflictEvent(record));
  }

  async #decide(
    table: TableInfo,
    base: Image | null,
    local: Image | null,
    remote: Image | null,
  ): Promise<{ resolution: ConflictResolutionKind; target: Target }> {
    const strategy = this.strategyFor(table);
    if (strategy === "overwrite") return { resolution: "local", target: overwrite(table, base, local, remote) };
    if (strategy === "remote-wins") return { resolution: "remote", target: remote };
    if (strategy === "merge") return { resolution: "merge", target: merge(table, base, local, remote) };
    const name = `${table.schema}.${table.name}`;
    const key = keyImage(table, (base ?? local)!);
    let answer: Resolution;
    try {
      answer = await strategy({
        table: name,
        key: imageToRow(key),
        base: base && imageToRow(base),
        local: local && imageToRow(local),
        remote: remote && imageToRow(remote),
      });
    } catch (cause) {
      throw new SyncError(
        "CONFLICT_RESOLVER_FAILED",
        `the conflict resolver of ${name} failed for key ${joinImage(key)}: ${(cause as Error)?.message ?? String(cause)}`,
        {
          cause,
          retryable: false,
        },
      );
    }
    if (answer === "local") return { resolution: "local", target: overwrite(table, base, local, remote) };
    if (answer === "remote") return { resolution: "remote", target: remote };
    if (answer === "skip") return { resolution: "skip", target: "skip" };
    if (typeof answer !== "object" || answer === null || Array.isArray(answer)) {
      throw invalid(
        name,
        key,
        `returned ${JSON.stringify(answer) ?? String(answer)}; expected a row object, "local", "remote" or "skip"`,
      );
    }
    const unknown = Object.keys(answer).filter((c) => !table.columns.some((tc) => tc.name === c));
    if (unknown.length > 0) throw invalid(name, key, `returned a row with unknown columns: ${unknown.join(", ")}`);
    // Columns the resolver leaves out are as "overwrite" would leave them (the remote's, if that deletes the row).
    const row = new Map(overwrite(table, base, local, remote) ?? remote ?? []);
    for (const [c, v] of rowToImage(answer)) row.set(c, v);
    return { resolution: "custom", target: row };
  }

  /** Resolvers' rows go through the table's types like every other image (and must keep the row's key). */
  async #canonicalTargets(settled: Settled[]): Promise<void> {
    const custom = settled.filter((s) => s.resolution === "custom");
    if (custom.length === 0) return;
    const rows = await this.#canonical(
      custom.map((s) => ({ table: s.table, text: encodeImage(s.table, s.target as Image) })),
    );
    custom.forEach((s, i) => {
      const row = rows[i]!;
      const keys = [s.base ?? s.local, s.local]
        .filter((img): img is Image => img !== null)
        .map((img) => keyText(s.table, img));
      if (!keys.includes(keyText(s.table, row))) {
        throw invalid(
          `${s.table.schema}.${s.table.name}`,
          keyImage(s.table, (s.base ?? s.local)!),
          `returned a row with another primary key (${keyLabel(s.table, row)})`,
        );
      }
      s.target = row;
    });
  }

  /**
   * Images as the local database renders them with canonical settings (time zone UTC...): the remote's text,
   * the captured images and resolvers' rows become comparable column by column, and show the same way.
   * `carried`: the texts are remote rows (`rowJsonb(t, row, true)`), else images as `encodeImage` writes them.
   */
  async #canonical(items: { table: TableInfo; text: string | null }[], carried = false): Promise<(Image | null)[]> {
    const out: (Image | null)[] = items.map(() => null);
    const byTable = new Map<TableInfo, number[]>();
    items.forEach((item, i) => {
      if (item.text === null) return;
      const list = byTable.get(item.table) ?? [];
      list.push(i);
      byTable.set(item.table, list);
    });
    if (byTable.size === 0) return out; // no local transaction for nothing (e.g. no key change met a taken key)
    await this.local.run((d) =>
      inReplicaTransaction(d, async () => {
        for (const [table, indexes] of byTable) {
          const { rows } = await d.query<{ j: string }>(
            // Decoded (core/json-text.ts: fields) and rendered as capture renders a row: a json column's text, an
            // array's bounds and a float's -0 kept.
            `SELECT ${rowImageSql(table, "ominipg_r")}::text AS j FROM json_array_elements($1::text::json) WITH ORDINALITY AS e(v, i) ` +
              `CROSS JOIN LATERAL (SELECT ${fields(table, "ominipg_p", carried)} FROM json_populate_record(NULL::${table.sql}, e.v) AS ominipg_p) AS ominipg_r ORDER BY e.i`,
            [`[${indexes.map((i) => items[i]!.text).join(",")}]`],
            { prepare: false },
          );
          indexes.forEach((i, n) => (out[i] = splitImage(rows[n]!.j, true)));
        }
      }),
    );
    return out;
  }
}

function present(writes: (RowOp | null | undefined)[]): RowOp[] {
  return writes.filter((w): w is RowOp => !!w);
}

function invalid(table: string, key: Image, why: string): SyncError {
  return new SyncError(
    "CONFLICT_RESOLUTION_INVALID",
    `the conflict resolver of ${table} for key ${joinImage(key)} ${why}`,
    { retryable: false },
  );
}

/**
 * The write that takes the remote from `remote` to `target`, expecting to find `remote` there (the row may
 * change again before it is pushed: that is a new conflict). Undefined when the remote already is the target.
 */
function pushOf(op: RowOp, remote: Image | null, target: Image | null): RowOp | undefined {
  const common = {
    table: op.table,
    entryIds: op.entryIds,
    firstId: op.firstId,
    lastId: op.lastId,
    priority: op.priority,
    expected: remote,
  };
  const columns = op.table.writable;
  if (target === null)
    return remote === null ? undefined : { ...common, kind: "delete", key: keyImage(op.table, remote), base: remote };
  const nonKey = columns.filter((c) => !op.table.primaryKey.includes(c));
  if (remote === null) return { ...common, kind: "upsert", image: target, set: nonKey, base: null, reinserted: false };
  const set = changedColumns(remote, target).filter((c) => columns.includes(c));
  if (set.length === 0) return undefined;
  if (keyText(op.table, remote) === keyText(op.table, target))
    return { ...common, kind: "upsert", image: target, set, base: remote, reinserted: false };
  return { ...common, kind: "move", key: keyImage(op.table, remote), image: target, set, base: remote };
}
