// Values handed from tests/harness/global-setup.ts to test workers via
// `project.provide()` / `inject()`.
import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** Superuser URL of the shared PostgreSQL server (can CREATE DATABASE). */
    ominipgAdminUrl: string;
    /** Path of an uncompressed PGlite data-dir dump (`dumpDataDir('none')`). */
    ominipgPgliteTemplate: string;
    /** A loopback port nothing listens on. */
    ominipgUnreachablePort: number;
    /** TLS of the shared server (ssl=on): CA files and the certificate's host name, or why it is off. */
    ominipgTls: { caFile: string; wrongCaFile: string; serverName: string } | { skip: string };
    /** PgBouncer (transaction pooling) in front of the shared server, or why there is none. */
    ominipgPooler: { url: string } | { skip: string };
  }
}
