/**
 * Row images as PostgreSQL's json text (`to_json` of a row, or jsonb text), split only at the top level:
 * column -> the value's JSON text. Values are never JSON.parse'd, so int8, numeric and big numbers stay
 * exact; images rendered by the same session give equal values equal text.
 */
export type Image = Map<string, string>;

/**
 * Split `{"a": 1, "b": {"x": [1, 2]}}` into a -> `1`, b -> `{"x": [1, 2]}`. `exact`: the text is `to_json` of
 * a row (a captured image), which writes no whitespace of its own, so whitespace around a value is the value's
 * (a json column's text as stored, core/json-text.ts) and is kept.
 */
export function splitImage(json: string, exact = false): Image {
  const out: Image = new Map();
  let i = skipSpace(json, 0);
  if (json[i] !== "{") throw new SyntaxError(`row image is not a JSON object: ${json.slice(0, 40)}`);
  i = skipSpace(json, i + 1);
  if (json[i] === "}") return out;
  for (;;) {
    const keyEnd = endOfString(json, i);
    const key = JSON.parse(json.slice(i, keyEnd)) as string;
    i = skipSpace(json, keyEnd);
    if (json[i] !== ":") throw new SyntaxError("expected ':' in row image");
    const start = skipSpace(json, i + 1);
    const end = endOfValue(json, start);
    out.set(key, exact ? json.slice(i + 1, skipSpace(json, end)) : json.slice(start, end));
    i = skipSpace(json, end);
    if (json[i] === ",") {
      i = skipSpace(json, i + 1);
      continue;
    }
    if (json[i] === "}") return out;
    throw new SyntaxError("expected ',' or '}' in row image");
  }
}

/** JSON object text from column -> value text, for the given columns (all when omitted). */
export function joinImage(image: Image, columns?: Iterable<string>): string {
  const parts: string[] = [];
  for (const col of columns ?? image.keys()) {
    const value = image.get(col);
    if (value !== undefined) parts.push(`${JSON.stringify(col)}:${value}`);
  }
  return `{${parts.join(",")}}`;
}

function skipSpace(s: string, i: number): number {
  while (i < s.length && (s[i] === " " || s[i] === "\n" || s[i] === "\t" || s[i] === "\r")) i++;
  return i;
}

function endOfString(s: string, i: number): number {
  if (s.charCodeAt(i) !== 34) throw new SyntaxError("expected a JSON string in row image");
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 92)
      j++; // backslash: skip the escaped character
    else if (c === 34) return j + 1;
  }
  throw new SyntaxError("unterminated string in row image");
}

/** The end of the JSON value starting at i (throws if it does not end). */
function endOfValue(s: string, i: number): number {
  const c = s.charCodeAt(i);
  if (c === 34) return endOfString(s, i);
  if (c === 123 || c === 91) {
    let depth = 0;
    for (let j = i; j < s.length; j++) {
      const d = s.charCodeAt(j);
      if (d === 34) j = endOfString(s, j) - 1;
      else if (d === 123 || d === 91) depth++;
      else if ((d === 125 || d === 93) && --depth === 0) return j + 1;
    }
    throw new SyntaxError("unterminated value in row image");
  }
  // A number, true, false or null: up to the next separator (`,` `}` or whitespace).
  let j = i;
  for (; j < s.length; j++) {
    const d = s.charCodeAt(j);
    if (d === 44 || d === 125 || d === 32 || d === 10) break;
  }
  return j;
}
