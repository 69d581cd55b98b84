/**
 * Text read from a file (a model header, a path, an error message quoting a file) made safe to
 * print on a terminal: control characters cannot move the cursor, clear the screen, change
 * colours, or start a new line that looks like the program's own output.
 */

/**
 * `text` with every C0 control character (U+0000–U+001F, newline and tab included), DEL and C1
 * control character (U+007F–U+009F) shown as `\xNN`, and the Unicode bidirectional overrides and
 * isolates (U+202A–U+202E, U+2066–U+2069) and line/paragraph separators shown as `\u{NNNN}`.
 * Everything else, backslashes included, is left as it is, so ordinary paths read the same.
 */
export function escapeText(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`;
  });
}

/**
 * A value from a file as one printable line: strings escaped as they are, anything else as JSON
 * (never `[object Object]`), cut to `max` characters with an ellipsis.
 */
export function showValue(value: unknown, max = 200): string {
  const text = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  const escaped = escapeText(text);
  return escaped.length > max ? `${escaped.slice(0, max - 1)}…` : escaped;
}
