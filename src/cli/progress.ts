import cliProgress from "cli-progress";

export interface ProgressReporter {
  update(done: number, total: number): void;
  stop(): void;
}

/** A progress bar on a terminal; plain, throttled lines otherwise (logs, pipes, CI). */
export function progressReporter(
  stream: NodeJS.WriteStream = process.stdout,
  what = { verb: "pushing", unit: "changes" },
): ProgressReporter {
  return stream.isTTY ? barReporter(stream, what) : lineReporter(stream, what.unit);
}

function barReporter(stream: NodeJS.WriteStream, what: { verb: string; unit: string }): ProgressReporter {
  let bar: cliProgress.SingleBar | undefined;
  return {
    update(done, total) {
      if (total === 0) return;
      if (!bar) {
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: `${what.verb} [{bar}] {percentage}% | {value}/{total} ${what.unit} | eta {eta_formatted}`,
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(total, done);
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}

const LINE_INTERVAL_MS = 1000;

function lineReporter(stream: NodeJS.WriteStream, unit: string): ProgressReporter {
  let lastLine = -Infinity;
  let lastDone = -1;
  return {
    update(done, total) {
      if (total === 0 || done === lastDone) return;
      const now = performance.now();
      if (done !== 0 && done !== total && now - lastLine < LINE_INTERVAL_MS) return;
      lastLine = now;
      lastDone = done;
      const percent = Math.floor((done / total) * 100);
      stream.write(`progress ${done}/${total} ${unit} (${percent}%)\n`);
    },
    stop() {},
  };
}
