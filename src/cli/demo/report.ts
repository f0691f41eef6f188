// What `keymesh demo` prints: a title, sections, and for each step the API call that changed something,
// the request through the gateway with its answer, the stats lines as `curl .../stats | grep` shows them,
// and a check mark (or a cross and the reason). Progress goes to stdout; the proxies' and the control
// plane's warnings and errors go to stderr, one line each. Plain text unless stdout is a terminal.

export interface ReportStreams {
  readonly out: NodeJS.WritableStream & { isTTY?: boolean };
  readonly err: NodeJS.WritableStream;
  /** Colors and bold headings (default: stdout is a terminal and NO_COLOR is unset). */
  readonly color?: boolean;
}

type Style = 'bold' | 'green' | 'red' | 'yellow' | 'dim';
const CODES: Record<Style, [number, number]> = { bold: [1, 22], green: [32, 39], red: [31, 39], yellow: [33, 39], dim: [2, 22] };

/** Indentation of the lines under a heading, and of the output under a command. */
const INDENT = '  ';
const OUTPUT = '    ';

export class Report {
  readonly #out: NodeJS.WritableStream;
  readonly #err: NodeJS.WritableStream;
  readonly #color: boolean;

  constructor(streams: ReportStreams) {
    this.#out = streams.out;
    this.#err = streams.err;
    this.#color = streams.color ?? false;
  }

  #style(style: Style, text: string): string {
    if (!this.#color) return text;
    const [on, off] = CODES[style];
    return `\u001b[${on}m${text}\u001b[${off}m`;
  }

  #write(text: string): void {
    this.#out.write(`${text}\n`);
  }

  title(title: string, lines: readonly string[] = []): void {
    this.#write(this.#style('bold', title));
    for (const line of lines) this.#write(`${INDENT}${line}`);
  }

  /** A heading: `Setup`, `Part 1: ...`, `Step 2/5: ...`. */
  section(heading: string, detail?: string): void {
    this.#write('');
    this.#write(`${this.#style('bold', heading)}${detail ? `  ${this.#style('dim', `(${detail})`)}` : ''}`);
  }

  /** One finished piece of the setup: `✔ what   detail`. */
  done(what: string, detail: string): void {
    this.#write(`${INDENT}${this.#style('green', '✔')} ${what.padEnd(18)} ${detail}`);
  }

  /** A command as a user would type it, with its output below (or `(no output)`). */
  command(command: string, output: readonly string[] = [], comment?: string): void {
    this.#write(`${INDENT}$ ${command}${comment ? `   ${this.#style('dim', `# ${comment}`)}` : ''}`);
    for (const line of output) this.#write(`${OUTPUT}${line}`);
  }

  /** An indented line of detail under the last command. */
  detail(text: string): void {
    this.#write(`${OUTPUT}${this.#style('dim', text)}`);
  }

  line(text = ''): void {
    this.#write(text === '' ? '' : `${INDENT}${text}`);
  }

  raw(text: string): void {
    this.#write(text);
  }

  ok(text: string): void {
    this.#write(`${INDENT}${this.#style('green', '✔')} ${text}`);
  }

  failed(text: string): void {
    this.#write(`${INDENT}${this.#style('red', '✘')} ${text}`);
  }

  /** A warning or error from a component (a proxy, the control plane), on stderr. */
  warn(source: string, text: string): void {
    this.#err.write(`${this.#style('yellow', `[${source}]`)} ${text}\n`);
  }
}

/** Lines of a table whose columns are padded to their widest cell. */
export function columns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => { widths[i] = Math.max(widths[i] ?? 0, cell.length); });
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd());
}
