/**
 * bytea values in and out of PGlite as its own codecs give and take them (a Uint8Array; the text is PostgreSQL's
 * hex format), at Node's speed. PGlite's build one string per byte: a 10 MB value took ~5 s to insert as a
 * parameter (most of it garbage collection) and ~0.9 s to read back; Buffer's hex codec converts it in ~20 ms.
 */
export const BYTEA = 17;

/** A parameter's text, or undefined where PGlite's own serializer should decide (and refuse what it refuses). */
export function byteaText(value: unknown): string | undefined {
  if (!(value instanceof Uint8Array)) return undefined;
  return `\\x${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex")}`;
}

/**
 * A column's value from its text: a Uint8Array of its own (not a view of Node's shared Buffer pool), as PGlite
 * gives; undefined for a text not in the hex format (bytea_output = escape), left to PGlite's parser.
 */
export function byteaValue(text: string): Uint8Array | undefined {
  if (!text.startsWith("\\x")) return undefined;
  const bytes = Buffer.allocUnsafeSlow((text.length - 2) >>> 1);
  const written = bytes.write(text.slice(2), "hex");
  return new Uint8Array(bytes.buffer, 0, written);
}
