import { protocol, parse, type PGlite } from "@electric-sql/pglite";
import type { Driver, Field, QueryResult, RowMode, TxStatus } from "../core/driver.js";
import { commandOf, rowCountOf } from "../core/driver.js";
import { Lru } from "../core/lru.js";
import { Mutex } from "../core/mutex.js";
import { parseTimestamp } from "../core/timestamp.js";
import { ArrayTypes, LOOKUP_NAME, LOOKUP_SQL, oidList } from "./array-types.js";
import { BYTEA, byteaText, byteaValue } from "./bytea.js";
import { adoptFileStorage } from "./memfs-storage.js";
import { handBack } from "./memory-pool.js";
import { openPglite, type NewDatabaseOptions } from "./new-database.js";

/** PGlite's protocol messages as its parser hands them over (their other fields depend on `name`). */
type BackendMessage = { name: string; [k: string]: unknown };
const { serialize } = protocol;

interface Prepared {
  name: string;
  paramTypes: number[];
}

/** The `timestamp` type (without time zone). */
const TIMESTAMP = 1114;

/**
 * PGlite through its wire protocol. Statements run as named prepared statements cached per SQL text
 * (parse and plan once, then bind/execute), which is ~3x faster than `db.query` for repeated statements.
 * Results and errors are built exactly as `db.query` builds them.
 */
export class PgliteDriver implements Driver {
  #db: PGlite;
  #lock = new Mutex();
  #cache: Lru<string, Prepared>;
  #evicted: string[] = [];
  #nextId = 0;
  #status: TxStatus = "idle";
  /** PGlite's parameter serializers and result parsers, bytea's replaced (bytea.ts), arrays' added as used. */
  #serializers: PGlite["serializers"];
  #parsers: PGlite["parsers"];
  #arrays: ArrayTypes;

  private constructor(db: PGlite, cacheSize: number) {
    this.#db = db;
    const serializeBytea = db.serializers[BYTEA];
    this.#serializers = {
      ...db.serializers,
      [BYTEA]: (value: unknown) => byteaText(value) ?? serializeBytea?.(value) ?? String(value),
    };
    const parseBytea = db.parsers[BYTEA];
    this.#parsers = {
      ...db.parsers,
      [BYTEA]: (text: string, typeId?: number) => byteaValue(text) ?? parseBytea?.(text, typeId) ?? text,
      [TIMESTAMP]: parseTimestamp,
    };
    this.#arrays = new ArrayTypes(this.#parsers, this.#serializers);
    this.#cache = new Lru(cacheSize, (_sql, p) => this.#evicted.push(p.name));
  }

  /** Open (or create: see `openPglite`) the database in `dataDir`, or a new one in memory. */
  static async open(
    dataDir: string | undefined,
    options: NewDatabaseOptions = {},
    cacheSize = 200,
  ): Promise<PgliteDriver> {
    const db = await openPglite(dataDir, options);
    adoptFileStorage(db.Module);
    return new PgliteDriver(db, cacheSize);
  }

  get txStatus(): TxStatus {
    return this.#status;
  }

  /** The PGlite instance, for what the wire protocol does not cover (dumps). */
  get pglite(): PGlite {
    return this.#db;
  }

  query<T>(
    sql: string,
    params: readonly unknown[] = [],
    options: { rowMode?: RowMode; prepare?: boolean } = {},
  ): Promise<QueryResult<T>> {
    return this.#lock.run(async () => {
      const rowMode = options.rowMode ?? "object";
      if (options.prepare === false) return this.#runUnnamed<T>(sql, params, rowMode);
      let stmt = this.#cache.get(sql);
      if (!stmt) {
        const name = `ominipg_${++this.#nextId}`;
        const msgs = await this.#send([
          serialize.parse({ name, text: sql }),
          serialize.describe({ type: "S", name }),
          serialize.sync(),
        ]);
        this.#throwIfError(msgs, sql, params);
        stmt = { name, paramTypes: paramTypesOf(msgs) };
        this.#cache.set(sql, stmt);
        await this.#closeEvicted();
        await this.#resolveTypes([...stmt.paramTypes, ...fieldTypesOf(msgs)]);
      }
      const msgs = await this.#send([
        serialize.bind({ statement: stmt.name, values: this.#serializeParams(params, stmt.paramTypes) }),
        serialize.describe({ type: "P" }),
        serialize.execute({}),
        serialize.sync(),
      ]);
      this.#throwIfError(msgs, sql, params);
      return this.#result<T>(msgs, rowMode); // its column types were resolved when it was prepared
    });
  }

  describe(sql: string): Promise<Field[]> {
    return this.#lock.run(async () => {
      const msgs = await this.#send([
        serialize.parse({ text: sql }),
        serialize.describe({ type: "S" }),
        serialize.sync(),
      ]);
      this.#throwIfError(msgs, sql, undefined);
      const desc = msgs.find((m) => m.name === "rowDescription");
      return ((desc?.fields ?? []) as Field[]).map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }));
    });
  }

  exec(sql: string, options: { rowMode?: RowMode } = {}): Promise<QueryResult[]> {
    return this.#lock.run(async () => {
      const msgs = await this.#send([serialize.query(sql)]);
      this.#throwIfError(msgs, sql, undefined);
      await this.#resolveTypes(fieldTypesOf(msgs));
      return this.#results(msgs, options.rowMode ?? "object");
    });
  }

  raw(sql: string, params: readonly unknown[] = []): Promise<(Uint8Array | null)[][]> {
    return this.#lock.run(async () => {
      // execProtocolRaw would also parse the response into messages, decoding every value: not wanted here.
      const parts: Uint8Array[] = [];
      await this.#db.execProtocolRawStream(Buffer.concat(await this.#unnamed(sql, params)), {
        syncToFs: false,
        onRawData: (data) => parts.push(data.slice()),
      });
      const response = Buffer.concat(parts);
      const { rows, status, failed } = scanResponse(response);
      this.#status = status;
      if (failed) {
        const msgs: BackendMessage[] = [];
        new protocol.Parser().parse(response, (m) => msgs.push(m as BackendMessage));
        this.#throwIfError(msgs, sql, params);
      }
      if (status === "idle") await this.#db.syncToFs();
      return rows;
    });
  }

  copyFrom(sql: string, data: Uint8Array): Promise<number> {
    return this.#lock.run(async () => {
      // The statement, its input as CopyData messages, CopyDone: one round trip through PGlite. On an error the
      // server skips the rest of the input up to CopyDone, then reports it.
      const msgs = await this.#send([serialize.query(sql), ...copyData(data), COPY_DONE]);
      this.#throwIfError(msgs, sql, undefined);
      return rowCountOf(String(msgs.findLast((m) => m.name === "commandComplete")?.text ?? ""));
    });
  }

  invalidate(): Promise<void> {
    return this.#lock.run(async () => {
      for (const p of this.#cache.values()) this.#evicted.push(p.name);
      this.#cache.clear();
      await this.#closeEvicted();
    });
  }

  async close(): Promise<void> {
    await this.#lock.run(async () => {
      if (this.#db.closed) return;
      await this.#db.close();
      handBack(this.#db);
    });
  }

  async #runUnnamed<T>(sql: string, params: readonly unknown[], rowMode: RowMode): Promise<QueryResult<T>> {
    const msgs = await this.#send(await this.#unnamed(sql, params));
    this.#throwIfError(msgs, sql, params);
    await this.#resolveTypes(fieldTypesOf(msgs));
    return this.#result<T>(msgs, rowMode);
  }

  /** The messages that run `sql` unprepared; with parameters, their types are described first. */
  async #unnamed(sql: string, params: readonly unknown[]): Promise<Uint8Array[]> {
    let paramTypes: number[] = [];
    if (params.length > 0) {
      const msgs = await this.#send([
        serialize.parse({ text: sql }),
        serialize.describe({ type: "S" }),
        serialize.sync(),
      ]);
      this.#throwIfError(msgs, sql, params);
      paramTypes = paramTypesOf(msgs);
      await this.#resolveTypes(paramTypes);
    }
    return [
      ...(params.length > 0 ? [] : [serialize.parse({ text: sql })]),
      serialize.bind({ values: this.#serializeParams(params, paramTypes) }),
      serialize.describe({ type: "P" }),
      serialize.execute({}),
      serialize.sync(),
    ];
  }

  async #closeEvicted(): Promise<void> {
    if (this.#evicted.length === 0) return;
    const names = this.#evicted.splice(0);
    await this.#send([...names.map((name) => serialize.close({ type: "S", name })), serialize.sync()]);
  }

  async #send(parts: Uint8Array[]): Promise<BackendMessage[]> {
    const msgs = (await this.#db.execProtocolStream(Buffer.concat(parts), { throwOnError: false })) as BackendMessage[];
    const ready = msgs.findLast((m) => m.name === "readyForQuery");
    if (ready) this.#status = ready.status === "T" ? "transaction" : ready.status === "E" ? "failed" : "idle";
    if (this.#status === "idle") await this.#db.syncToFs();
    return msgs;
  }

  /** Registers the array types among `oids` that nothing covers yet (ArrayTypes): one catalog lookup, rarely. */
  async #resolveTypes(oids: number[]): Promise<void> {
    const asked = this.#arrays.unknown(oids);
    if (asked.length === 0) return;
    // Named, and closed after: the unnamed statement may be a caller's, described but not bound yet.
    const msgs = await this.#send([
      serialize.parse({ name: LOOKUP_NAME, text: LOOKUP_SQL }),
      serialize.bind({ statement: LOOKUP_NAME, values: [oidList(asked)] }),
      serialize.describe({ type: "P" }),
      serialize.execute({}),
      serialize.close({ type: "S", name: LOOKUP_NAME }),
      serialize.sync(),
    ]);
    this.#throwIfError(msgs, LOOKUP_SQL, [asked]);
    const [found] = parse.parseResults(msgs as Parameters<typeof parse.parseResults>[0], this.#parsers);
    this.#arrays.register(asked, (found?.rows ?? []) as { oid: number; elem: number }[]);
  }

  #serializeParams(params: readonly unknown[], types: number[]): (string | null)[] {
    return params.map((value, i) => {
      if (value === null || value === undefined) return null;
      const serializer = this.#serializers[types[i] ?? 0];
      return serializer ? (serializer(value) as string) : String(value);
    });
  }

  #throwIfError(msgs: BackendMessage[], sql: string, params: readonly unknown[] | undefined): void {
    const error = msgs.find((m) => m.name === "error");
    if (!error) return;
    // Same decoration as PGlite's own query(): the error keeps PostgreSQL's fields and gains the query.
    Object.assign(error, { query: sql, params, queryOptions: undefined });
    throw error;
  }

  #results(msgs: BackendMessage[], rowMode: RowMode): QueryResult[] {
    const parsed = parse.parseResults(msgs as Parameters<typeof parse.parseResults>[0], this.#parsers, { rowMode });
    const tags = msgs.filter((m) => m.name === "commandComplete").map((m) => String(m.text));
    return parsed.map((r, i) => {
      const tag = tags[i] ?? "";
      const fields: Field[] = r.fields.map((f) => ({ name: f.name, dataTypeID: f.dataTypeID }));
      const command = commandOf(tag);
      return { rows: r.rows as Record<string, unknown>[], fields, command, rowCount: rowCountOf(tag) };
    });
  }

  #result<T>(msgs: BackendMessage[], rowMode: RowMode): QueryResult<T> {
    const [first] = this.#results(msgs, rowMode);
    return (first ?? { rows: [], rowCount: 0, fields: [], command: "" }) as QueryResult<T>;
  }
}

/** COPY input as CopyData messages of at most 1 MiB each (header, then a view of the bytes: copied once, by #send). */
function copyData(data: Uint8Array): Uint8Array[] {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += COPY_PIECE) {
    const piece = data.subarray(at, Math.min(at + COPY_PIECE, data.length));
    const header = new Uint8Array(5);
    header[0] = 0x64; // 'd'
    new DataView(header.buffer).setInt32(1, piece.length + 4);
    parts.push(header, piece);
  }
  return parts;
}

const COPY_PIECE = 1 << 20;
const COPY_DONE = new Uint8Array([0x63, 0, 0, 0, 4]); // 'c'

/** The column types of every row description among `msgs`. */
function fieldTypesOf(msgs: BackendMessage[]): number[] {
  const oids: number[] = [];
  for (const m of msgs) if (m.name === "rowDescription") for (const f of m.fields as Field[]) oids.push(f.dataTypeID);
  return oids;
}

function paramTypesOf(msgs: BackendMessage[]): number[] {
  return (msgs.find((m) => m.name === "parameterDescription")?.dataTypeIDs as number[] | undefined) ?? [];
}

/**
 * The data rows of a raw protocol response, each column as a view of its bytes (null for NULL), the
 * transaction status it ends with, and whether it holds an error (parsed by the caller, rare).
 */
function scanResponse(response: Uint8Array): { rows: (Uint8Array | null)[][]; status: TxStatus; failed: boolean } {
  const view = new DataView(response.buffer, response.byteOffset, response.byteLength);
  const rows: (Uint8Array | null)[][] = [];
  let status: TxStatus = "idle";
  let failed = false;
  for (let at = 0; at < response.length; at += 1 + view.getInt32(at + 1)) {
    const type = response[at];
    if (type === DATA_ROW) {
      const row: (Uint8Array | null)[] = [];
      let field = at + 7;
      for (let n = view.getInt16(at + 5); n > 0; n--) {
        const length = view.getInt32(field);
        field += 4;
        row.push(length < 0 ? null : response.subarray(field, field + length));
        if (length > 0) field += length;
      }
      rows.push(row);
    } else if (type === ERROR) failed = true;
    else if (type === READY) status = TX_STATUS[response[at + 5]!] ?? "idle";
  }
  return { rows, status, failed };
}

const DATA_ROW = 0x44; // 'D'
const ERROR = 0x45; // 'E'
const READY = 0x5a; // 'Z'
const TX_STATUS: Record<number, TxStatus> = { 0x49: "idle", 0x54: "transaction", 0x45: "failed" }; // I, T, E
