export { Ominipg } from "./ominipg.js";
export type { Transaction, QueryOptions } from "./client.js";
export type { ConnectOptions, SyncOptions } from "./core/options.js";
export type { QueryResult, Field } from "./core/driver.js";
export type { OminipgEvents, Status, FeedStatus } from "./types.js";
export type { FeedDrainer, FeedDrainerOptions, FeedDrainerEvents, FeedMode, FeedOptions } from "./feed.js";
export type { OminipgWarning, WarningCode } from "./core/warnings.js";
export type { SyncResult } from "./push/types.js";
export type { VerifyResult, TableDifference } from "./pull/verify.js";
export {
  OminipgError,
  ConfigError,
  ClosedError,
  LocalDatabaseError,
  SchemaError,
  CaptureError,
  SyncError,
} from "./core/errors.js";
export type { PullResult, PullProgress, TablePull } from "./pull/types.js";
export type {
  Row,
  Conflict,
  ConflictEvent,
  ConflictOptions,
  ConflictResolver,
  ConflictStrategy,
  ConflictResolutionKind,
  Resolution,
} from "./core/conflicts.js";
