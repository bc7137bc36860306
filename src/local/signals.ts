/**
 * Clean close on SIGTERM and SIGINT (docker stop, Ctrl-C) while a directory database is open: every
 * registered client is closed (a transaction left open is rolled back, a sync in flight finishes, the
 * lock is released). A library does not decide when its host process ends: if Ominipg's listener was the
 * only one for that signal, the signal is raised again once everything is closed, so the process ends as
 * it would have without Ominipg (killed by that signal: exit status 128 + its number); if the app listens
 * too, ending the process is left to the app. A second signal while closing, with no app listener, ends the
 * process at once (what is committed is safe: the next open recovers like after a crash).
 */
const SIGNALS = ["SIGTERM", "SIGINT"] as const;
type Signal = (typeof SIGNALS)[number];

const closers = new Set<() => Promise<void>>();
let installed = false;
let closing = false;

/** Close with `close` on SIGTERM/SIGINT until the returned function is called. */
export function closeOnSignal(close: () => Promise<void>): () => void {
  closers.add(close);
  if (!installed) {
    installed = true;
    for (const signal of SIGNALS) process.on(signal, onSignal);
  }
  return () => {
    closers.delete(close);
    if (closers.size === 0 && !closing) uninstall();
  };
}

function onSignal(signal: Signal): void {
  const alone = process.listenerCount(signal) === 1;
  if (closing) {
    if (alone) raise(signal);
    return;
  }
  closing = true;
  void Promise.allSettled([...closers].map((close) => close())).then(() => {
    closing = false;
    if (alone) raise(signal);
    else if (closers.size === 0) uninstall();
  });
}

function raise(signal: Signal): void {
  uninstall();
  process.kill(process.pid, signal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  for (const signal of SIGNALS) process.off(signal, onSignal);
}
