import { Worker } from "node:worker_threads";

/**
 * The lock heartbeat: one worker thread per process refreshes the mtime of every lock file this process
 * holds. A thread, not a timer: a long PGlite statement runs synchronously on the main thread and would
 * stop a timer there, so a live holder could look stale. The worker opens each file itself and checks it
 * is still the inode the lock was taken with; when the path names another file (the lock was taken over:
 * this process was frozen longer than the stale time), it stops refreshing it and reports it.
 */
const WORKER = `
// import(), not require(): an eval'd worker inherits the process's flags, and is an ES module under
// --input-type=module or --experimental-default-type=module, where require does not exist.
Promise.all([import("node:fs"), import("node:worker_threads")]).then(([fs, { parentPort }]) => {
const held = new Map();
let timer;
function drop(id, lost) {
  const h = held.get(id);
  if (!h) return;
  held.delete(id);
  try { fs.closeSync(h.fd); } catch {}
  if (lost) parentPort.postMessage({ lost: id });
}
function beat() {
  const now = Date.now() / 1000;
  for (const [id, h] of held) {
    try {
      fs.futimesSync(h.fd, now, now);
      const current = fs.statSync(h.path, { bigint: true });
      if (String(current.ino) !== h.ino) drop(id, true);
    } catch {
      drop(id, true);
    }
  }
}
function schedule() {
  clearInterval(timer);
  if (held.size > 0) timer = setInterval(beat, Math.min(...[...held.values()].map((h) => h.every)));
}
parentPort.on("message", (m) => {
  if (m.add !== undefined) {
    try {
      const fd = fs.openSync(m.path, "r+"); // writable: Windows needs it to set times
      held.set(m.add, { fd, path: m.path, ino: m.ino, every: m.every });
      if (String(fs.fstatSync(fd, { bigint: true }).ino) !== m.ino) drop(m.add, true);
    } catch {
      parentPort.postMessage({ lost: m.add });
    }
  } else drop(m.remove, false);
  schedule();
  if (m.last) parentPort.close(); // nothing left to refresh: the thread ends
});
});
`;

let worker: Worker | undefined;
let nextId = 0;
const beating = new Map<number, (reason: string) => void>();

/**
 * Refresh `lockPath`'s mtime every `everyMs` while its inode is `ino`. `onLost` is told if the path stops
 * naming that inode. Returns the function that stops it.
 */
export function startHeartbeat(
  lockPath: string,
  ino: bigint,
  everyMs: number,
  onLost: (reason: string) => void,
): () => void {
  const id = nextId++;
  beating.set(id, onLost);
  const thread = (worker ??= spawn());
  thread.postMessage({ add: id, path: lockPath, ino: String(ino), every: everyMs });
  return () => {
    if (!beating.delete(id) || worker !== thread) return;
    // The last one: the thread closes the file and ends (a new lock starts a new thread).
    if (beating.size === 0) worker = undefined;
    thread.postMessage({ remove: id, last: beating.size === 0 });
  };
}

function spawn(): Worker {
  const thread = new Worker(WORKER, { eval: true, name: "ominipg lock heartbeat" });
  thread.unref(); // never what keeps the process alive
  thread.on("message", (m: { lost?: number }) => {
    const onLost = m.lost === undefined ? undefined : beating.get(m.lost);
    if (m.lost !== undefined) beating.delete(m.lost);
    onLost?.("taken over");
  });
  thread.on("error", (err) => {
    if (worker === thread) worker = undefined;
    const lost = [...beating.values()];
    beating.clear();
    for (const onLost of lost) onLost(`the heartbeat thread failed: ${err.message}`);
  });
  return thread;
}
