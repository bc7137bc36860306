/** How much work each mode of `npm run bench` does. */
import type { Storage } from "./lib/contenders.js";

export type Mode = "tiny" | "quick" | "full";

export interface Sizes {
  runs: number;
  warmup: number;
  storages: Storage[];
  bulkStorages: Storage[];
  singleStatements: number;
  bulkRows: number;
  transactions: number;
  pushInserts: number;
  updateRows: number;
  updatesPerRow: number;
  memoryChanges: number;
  memoryChunk: number;
  memoryStorages: Storage[];
  /** Cold opens (section 6): runs, and whether `initCache: false` (initdb) is measured too. */
  openRuns: number;
  openInitdb: boolean;
  /** Pull (section 7): rows of the remote table, and runs. */
  pullRows: number;
  pullRuns: number;
  /** Remote updates the live latency is measured on. */
  pullLiveUpdates: number;
  /** Idle pulls' remote work: table sizes, client counts, clients open at once, idle pulls per client (and of the diff's client). */
  pullIdleSizes: number[];
  pullIdleClients: number[];
  pullIdleWave: number;
  pullIdleRounds: number;
  pullIdleDiffPulls: number;
  /** Wide rows (section 8): single-row statements per kind per run, rows whose log bytes are measured. */
  wideStatements: number;
  wideBytesRows: number;
  /** Pending one-column updates of `wideMemoryRows` wide rows captured then drained (directory storage). */
  wideMemoryChanges: number;
  wideMemoryRows: number;
}

export const SIZES: Record<Mode, Sizes> = {
  tiny: {
    runs: 1,
    warmup: 0,
    storages: ["memory"],
    bulkStorages: ["memory"],
    singleStatements: 50,
    bulkRows: 300,
    transactions: 2,
    pushInserts: 300,
    updateRows: 30,
    updatesPerRow: 10,
    memoryChanges: 2000,
    memoryChunk: 1000,
    memoryStorages: ["directory"],
    openRuns: 1,
    openInitdb: false,
    pullRows: 2000,
    pullRuns: 1,
    pullLiveUpdates: 3,
    pullIdleSizes: [200, 2000],
    pullIdleClients: [1, 2],
    pullIdleWave: 1,
    pullIdleRounds: 1,
    pullIdleDiffPulls: 1,
    wideStatements: 30,
    wideBytesRows: 30,
    wideMemoryChanges: 2000,
    wideMemoryRows: 200,
  },
  quick: {
    runs: 5,
    warmup: 1,
    storages: ["memory", "directory"],
    bulkStorages: ["memory"],
    singleStatements: 1000,
    bulkRows: 50_000,
    transactions: 20,
    pushInserts: 100_000,
    updateRows: 1000,
    updatesPerRow: 100,
    memoryChanges: 1_000_000,
    memoryChunk: 100_000,
    memoryStorages: ["directory"],
    openRuns: 5,
    openInitdb: true,
    pullRows: 200_000,
    pullRuns: 3,
    pullLiveUpdates: 20,
    pullIdleSizes: [20_000, 200_000],
    pullIdleClients: [1, 10, 100],
    pullIdleWave: 10,
    pullIdleRounds: 3,
    pullIdleDiffPulls: 2,
    wideStatements: 500,
    wideBytesRows: 200,
    wideMemoryChanges: 1_000_000,
    wideMemoryRows: 10_000,
  },
  full: {
    runs: 7,
    warmup: 1,
    storages: ["memory", "directory"],
    bulkStorages: ["memory", "directory"],
    singleStatements: 10_000,
    bulkRows: 100_000,
    transactions: 100,
    pushInserts: 100_000,
    updateRows: 1000,
    updatesPerRow: 100,
    memoryChanges: 1_000_000,
    memoryChunk: 100_000,
    memoryStorages: ["directory", "memory"],
    openRuns: 7,
    openInitdb: true,
    pullRows: 200_000,
    pullRuns: 5,
    pullLiveUpdates: 40,
    pullIdleSizes: [20_000, 200_000],
    pullIdleClients: [1, 10, 100],
    pullIdleWave: 10,
    pullIdleRounds: 5,
    pullIdleDiffPulls: 3,
    wideStatements: 5000,
    wideBytesRows: 1000,
    wideMemoryChanges: 1_000_000,
    wideMemoryRows: 10_000,
  },
};
