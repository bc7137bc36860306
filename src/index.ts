export { Ominipg } from "./ominipg.js";
export type { Transaction, QueryOptions } from "./client.js";
export type { ConnectOptions, SyncOptions } from "./options.js";
export type { QueryResult, Field } from "./driver.js";
export type { SyncResult, OminipgEvents, Status } from "./types.js";
export type { VerifyResult, TableDifference } from "./verify.js";
export { OminipgError, ConfigError, ClosedError, LocalDatabaseError, SchemaError, CaptureError, SyncError } from "./errors.js";
export type { PullResult, PullProgress, TablePull } from "./pull/puller.js";
export type { Row, Conflict, ConflictEvent, ConflictOptions, ConflictResolver, ConflictStrategy, ConflictResolutionKind, Resolution } from "./conflicts/types.js";
