import type { Catalog } from "../capture/catalog.js";
import type { TableRules } from "../capture/constraints.js";
import type { ResolvedSync, TestHooks } from "../core/options.js";
import type { References, TableInfo } from "../core/table.js";
import type { LocalAccess } from "../local/access.js";
import type { Remote } from "../remote/remote.js";
import type { PartitionedTables } from "../remote/remote-target.js";
import type { RowOp } from "./coalesce.js";
import type { CopyLayout } from "./copy.js";
import type { RemoteSchema } from "./schema-check.js";
import type { ConflictSettler } from "./settle.js";
import type { Tally } from "./tally.js";

/** What every part of one sync works with: its dependencies, what it found at the start, and its tally. */
export interface PushContext {
  local: LocalAccess;
  remote: Remote;
  options: ResolvedSync;
  settler: ConflictSettler;
  testHooks: TestHooks;
  tally: Tally;
  catalog: Catalog;
  /** The synced tables a table references by a foreign key, locally or on the remote (schema-check.ts). */
  references: References;
  /** The remote's tables as checked before the first push: rows of a table it refuses are not pushed (refusePush). */
  remoteSchema: RemoteSchema;
  /** The synced tables the remote holds as partitioned, read at the start of this sync (remote/remote-target.ts). */
  partitioned: PartitionedTables;
  /** Each synced table's rank in foreign-key dependency order (parents first). */
  order: Map<number, number>;
  rules: Map<number, TableRules>;
  clientId: string;
  /** The log's last id at the start: the sync drains up to it. */
  maxId: number;
  /** The conflicts settled in this sync, by the change as captured (batch-pusher.ts: settleOnce). */
  settled: WeakMap<RowOp, { remote: string | null; taken: string | null; writes: RowOp[] }>;
  /** Tables whose new rows the role may insert but not read back: plain INSERTs in this sync (batch-pusher.ts). */
  writeOnly: Set<number>;
  /** Each table's COPY layout (undefined: its rows cannot go by COPY), made once per sync. */
  layouts: (table: TableInfo) => CopyLayout | undefined;
}

/** The code a batch's remote failure carries: retryable, or the remote's refusal of the batch. */
export const PUSH_FAILED = "REMOTE_PUSH_FAILED";
