// Plain-text output of list commands: aligned columns, times in ISO 8601.

/** Rows (the first is the header) as columns padded to their widest cell. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}

/** An epoch-ms time as ISO 8601, '-' for none. */
export function isoOrDash(ms: number | null | undefined): string {
  return ms ? new Date(ms).toISOString() : '-';
}
