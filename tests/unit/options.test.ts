// Bad options to connect() are refused up front with a ConfigError that says what is wrong, before anything is
// opened: not a TypeError from deep inside, not a failure seconds later.
import { describe, expect, it } from "vitest";
import { resolveSyncOptions, validateConnectOptions, type ConnectOptions } from "../../src/core/options.js";

const check = (options: unknown) => () => validateConnectOptions(options as ConnectOptions, () => Buffer.alloc(0));
const sync = (options: unknown) => () => resolveSyncOptions(options as never);

describe("connect options", () => {
  it.each([
    [{ statementCacheSize: 0 }, /statementCacheSize must be a whole number >= 1/],
    [{ statementCacheSize: -1 }, /statementCacheSize/],
    [{ loadDataDir: "abc" }, /loadDataDir must be a Blob/],
    [{ sharedBuffers: "1kB" }, /sharedBuffers must be a size from "128kB" to "1GB"/],
    [{ sharedBuffers: "4GB" }, /sharedBuffers/],
    [{ sharedBuffers: "16mb" }, /sharedBuffers/],
  ])("%o is refused", (options, message) => {
    expect(check(options)).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID", message: expect.stringMatching(message) }),
    );
  });

  it.each([
    [{ sharedBuffers: "128kB" }],
    [{ sharedBuffers: "1GB" }],
    [{ statementCacheSize: 1 }],
    [{ loadDataDir: new Blob([]) }],
  ])("%o is taken", (options) => expect(check(options)).not.toThrow());

  it.each([
    [null, /sync must be an object/],
    [{ retry: "3" }, /sync.retry must be an object/],
    [{ intervalMs: "100" }, /sync.intervalMs must be a whole number >= 0, got "100"/],
    [{ closeTimeoutMs: -1 }, /sync.closeTimeoutMs must be a whole number >= 0, got -1/],
  ])("sync %o is refused", (options, message) => {
    expect(sync(options)).toThrow(
      expect.objectContaining({ code: "CONFIG_INVALID", message: expect.stringMatching(message) }),
    );
  });
});
