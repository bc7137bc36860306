// PgBouncer in transaction pooling mode in front of the shared test server (global setup only). Debian's
// pgbouncer, when installed (`.ci/run` tries to); tests that need it skip with the reason otherwise.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { access, chmod, chown, mkdir, writeFile } from "node:fs/promises";
import { createConnection } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface Pooler {
  /** The admin URL, but through PgBouncer. */
  url: string;
  stop(): Promise<void>;
}

async function findBinary(): Promise<string | undefined> {
  for (const candidate of ["/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer"]) {
    try {
      await access(candidate);
      return candidate;
    } catch {
      // next
    }
  }
  try {
    return (await run("sh", ["-c", "command -v pgbouncer"])).stdout.trim() || undefined;
  } catch {
    return undefined;
  }
}

async function postgresUser(): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

/**
 * Start PgBouncer on `port` in front of the server of `adminUrl`: transaction pooling, a small pool (so
 * that client connections really share server connections), SCRAM/cleartext auth from an auth_file holding
 * the admin password. Returns `{ reason }` when it cannot run here.
 */
export async function startPooler(dir: string, adminUrl: string, port: number): Promise<Pooler | { reason: string }> {
  const bin = await findBinary();
  if (!bin) return { reason: "pgbouncer is not installed (apt-get install pgbouncer)" };
  const target = new URL(adminUrl);
  const asRoot = process.getuid?.() === 0;
  const owner = asRoot ? await postgresUser() : undefined;
  if (asRoot && !owner) return { reason: 'running as root and there is no "postgres" OS user to run pgbouncer as' };
  const home = join(dir, "pgbouncer");
  await mkdir(home, { recursive: true });
  const user = decodeURIComponent(target.username);
  const password = decodeURIComponent(target.password);
  await writeFile(join(home, "users.txt"), `"${user}" "${password}"\n`);
  await writeFile(
    join(home, "pgbouncer.ini"),
    [
      "[databases]",
      `* = host=${target.hostname} port=${target.port}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      "unix_socket_dir =",
      "auth_type = scram-sha-256",
      `auth_file = ${join(home, "users.txt")}`,
      "pool_mode = transaction",
      "default_pool_size = 2",
      "max_client_conn = 500",
      "max_db_connections = 4",
      "server_reset_query =",
      "ignore_startup_parameters = extra_float_digits",
      `logfile = ${join(home, "pgbouncer.log")}`,
      "log_connections = 0",
      "log_disconnections = 0",
      "",
    ].join("\n"),
  );
  await chmod(join(home, "users.txt"), 0o600);
  if (owner) {
    await chown(home, owner.uid, owner.gid);
    for (const f of ["users.txt", "pgbouncer.ini"]) await chown(join(home, f), owner.uid, owner.gid);
  }
  let output = "";
  const child: ChildProcess = spawn(bin, [join(home, "pgbouncer.ini")], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(owner ? { uid: owner.uid, gid: owner.gid } : {}),
  });
  child.stdout?.on("data", (d) => (output = (output + String(d)).slice(-4000)));
  child.stderr?.on("data", (d) => (output = (output + String(d)).slice(-4000)));
  let exited = false;
  child.once("exit", () => (exited = true));
  child.once("error", (err) => {
    exited = true;
    output += String(err);
  });
  const onExit = (): void => void child.kill("SIGKILL");
  process.once("exit", onExit);
  for (let i = 0; i < 100 && !exited; i++) {
    if (await listening(port)) {
      const url = new URL(adminUrl);
      url.port = String(port);
      return {
        url: url.href,
        stop: async () => {
          process.removeListener("exit", onExit);
          if (exited) return;
          const gone = new Promise((resolve) => child.once("exit", resolve));
          child.kill("SIGTERM");
          await Promise.race([gone, sleep(3000)]);
          if (!exited) child.kill("SIGKILL");
        },
      };
    }
    await sleep(50);
  }
  process.removeListener("exit", onExit);
  child.kill("SIGKILL");
  return { reason: `pgbouncer did not start: ${output.trim().split("\n").slice(-3).join(" | ") || "no output"}` };
}
