// TLS for the shared test server (global setup only): a throw-away CA, a server certificate for
// "localhost" signed by it, and a second, unrelated CA (for "wrong CA" tests). The server then runs with
// ssl=on; clients that do not ask for TLS are unaffected.
import { execFile } from "node:child_process";
import { chmod, chown, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export interface TlsFiles {
  /** CA that signed the server certificate. */
  caFile: string;
  /** A CA that did not sign it. */
  wrongCaFile: string;
  /** The certificate's only name: "localhost" (so verify-full through 127.0.0.1 must fail). */
  serverName: string;
  certFile: string;
  keyFile: string;
}

/** `{ files }`, or `{ reason }` why TLS is not available (no openssl, ...). */
export async function makeTlsFiles(dir: string): Promise<{ files: TlsFiles } | { reason: string }> {
  const openssl = ["/usr/bin/openssl", "openssl"];
  let bin: string | undefined;
  for (const candidate of openssl) {
    try {
      await run(candidate, ["version"]);
      bin = candidate;
      break;
    } catch {
      // next
    }
  }
  if (!bin) return { reason: "openssl is not installed" };
  const tls = join(dir, "tls");
  await mkdir(tls, { recursive: true });
  await chmod(tls, 0o755);
  const f = (name: string) => join(tls, name);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    await run(bin, [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      f("ca.key"),
      "-out",
      f("ca.crt"),
      "-days",
      "3",
      "-subj",
      "/CN=ominipg test CA",
    ]);
    await run(bin, [
      "req",
      "-x509",
      ...ec,
      "-keyout",
      f("wrong-ca.key"),
      "-out",
      f("wrong-ca.crt"),
      "-days",
      "3",
      "-subj",
      "/CN=ominipg wrong CA",
    ]);
    await run(bin, ["req", ...ec, "-keyout", f("server.key"), "-out", f("server.csr"), "-subj", "/CN=localhost"]);
    await writeFile(
      f("ext.cnf"),
      "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    );
    await run(bin, [
      "x509",
      "-req",
      "-in",
      f("server.csr"),
      "-CA",
      f("ca.crt"),
      "-CAkey",
      f("ca.key"),
      "-CAcreateserial",
      "-out",
      f("server.crt"),
      "-days",
      "3",
      "-extfile",
      f("ext.cnf"),
    ]);
    for (const name of ["ca.crt", "wrong-ca.crt", "server.crt"]) await chmod(f(name), 0o644);
    await chmod(f("server.key"), 0o600);
  } catch (err) {
    return { reason: `openssl failed: ${(err as Error).message.split("\n")[0]}` };
  }
  return {
    files: {
      caFile: f("ca.crt"),
      wrongCaFile: f("wrong-ca.crt"),
      serverName: "localhost",
      certFile: f("server.crt"),
      keyFile: f("server.key"),
    },
  };
}

/** PostgreSQL insists that its key file belongs to the user it runs as, with mode 0600. */
export async function giveKeyTo(files: TlsFiles, uid: number, gid: number): Promise<void> {
  await chown(files.keyFile, uid, gid);
  await chown(files.certFile, uid, gid);
}

export function sslFlags(files: TlsFiles): string[] {
  return ["-c", "ssl=on", "-c", `ssl_cert_file=${files.certFile}`, "-c", `ssl_key_file=${files.keyFile}`];
}
