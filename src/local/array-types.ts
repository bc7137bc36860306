import { types, type PGlite } from "@electric-sql/pglite";

type Parsers = PGlite["parsers"];
type Serializers = PGlite["serializers"];

/**
 * The array types' parsers and serializers, looked up when a statement first uses a type, not when the
 * database opens. PGlite's own start reads every array type from pg_type (`_initArrayTypes`): the first
 * statement of a new backend, it pays for the cold catalog caches, ~70-100 ms of every open. Here the
 * driver asks only for the types a statement's parameters or columns have that no parser covers yet, each
 * once per open (a type made later is found as well, which PGlite's start-time list misses).
 *
 * What is registered is what PGlite registers: an array type that is its element's `typarray` (not
 * int2vector or oidvector, which are also in category 'A'), parsed and serialized by PGlite's own functions
 * with the element's handler as it stands when a value is converted.
 */
export class ArrayTypes {
  /** Type oids already answered: a parser, a lookup that found an array type, or one that found none. */
  readonly #known = new Set<number>();

  constructor(
    readonly parsers: Parsers,
    readonly serializers: Serializers,
  ) {
    for (const oid of Object.keys(parsers)) if (/^\d+$/.test(oid)) this.#known.add(Number(oid));
  }

  /** The oids among `oids` not answered yet (none for almost every statement: no lookup is needed). */
  unknown(oids: number[]): number[] {
    let missing: number[] | undefined;
    for (const oid of oids) if (oid > 0 && !this.#known.has(oid) && !missing?.includes(oid)) (missing ??= []).push(oid);
    return missing ?? [];
  }

  /** Register the rows of LOOKUP_SQL run for `asked`; every asked oid is then known. */
  register(asked: number[], rows: { oid: number; elem: number }[]): void {
    for (const { oid, elem } of rows) {
      this.parsers[oid] = (text: string) => types.arrayParser(text, this.parsers[elem] as types.Parser, oid);
      this.serializers[oid] = (value: unknown) => types.arraySerializer(value, this.serializers[elem], oid);
    }
    for (const oid of asked) this.#known.add(oid);
  }
}

/** The lookup's prepared statement: named, so that it never replaces a caller's unnamed one. */
export const LOOKUP_NAME = "ominipg_array_types";

/** The array types among $1 (an oid[] literal, see `oidList`), with their element type. */
export const LOOKUP_SQL = `SELECT t.oid::int4 AS oid, t.typelem::int4 AS elem
FROM pg_catalog.pg_type t JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND e.typarray = t.oid
WHERE t.oid = ANY($1::pg_catalog.oid[]) AND t.typcategory = 'A'`;

/** An oid[] literal: the lookup's parameter is sent as text, as no array serializer may be known yet. */
export function oidList(oids: number[]): string {
  return `{${oids.join(",")}}`;
}
