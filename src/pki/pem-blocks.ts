// Splits text into PEM blocks (RFC 7468) and checks the armour and base64, so that every reader can say
// precisely what is wrong with a file: no block at all, a cut-off block, damaged base64. The DER inside is
// left to @peculiar/x509 or OpenSSL.

export interface PemBlock {
  /** The label between BEGIN and END, e.g. "CERTIFICATE", "ENCRYPTED PRIVATE KEY". */
  readonly label: string;
  /** RFC 1421 headers, as in legacy encrypted keys ("Proc-Type: 4,ENCRYPTED"). */
  readonly headers: ReadonlyMap<string, string>;
  readonly der: Uint8Array;
  /** The block re-armoured, for consumers that want PEM (node:crypto). */
  readonly pem: string;
}

const BEGIN = /^-----BEGIN ([A-Z0-9 ]+)-----$/;
const END = /^-----END ([A-Z0-9 ]+)-----$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Every PEM block in `text`, in order. `fail` builds the error thrown for a damaged file; its message is
 * the problem only (the caller adds which file it was).
 */
export function splitPem(text: string, fail: (problem: string) => Error): PemBlock[] {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const blocks: PemBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const begin = BEGIN.exec(lines[i] ?? '');
    if (!begin) continue;
    const label = begin[1] ?? '';
    const body: string[] = [];
    const headers = new Map<string, string>();
    let j = i + 1;
    let ended = false;
    for (; j < lines.length; j++) {
      const line = lines[j] ?? '';
      const end = END.exec(line);
      if (end) {
        if (end[1] !== label) throw fail(`the ${label} block ends with "-----END ${end[1]}-----"; the file is damaged`);
        ended = true;
        break;
      }
      if (BEGIN.test(line)) break;
      const header = body.length === 0 ? /^([A-Za-z-]+):\s*(.*)$/.exec(line) : null;
      if (header) headers.set(header[1] ?? '', header[2] ?? '');
      else if (line !== '') body.push(line);
    }
    if (!ended) throw fail(`the ${label} block has no "-----END ${label}-----" line; the file is cut short or damaged`);
    const b64 = body.join('');
    if (b64.length === 0 || b64.length % 4 !== 0 || !BASE64.test(b64)) {
      throw fail(`the ${label} block is damaged: its base64 content is invalid`);
    }
    blocks.push({ label, headers, der: new Uint8Array(Buffer.from(b64, 'base64')), pem: lines.slice(i, j + 1).join('\n') + '\n' });
    i = j;
  }
  if (blocks.length === 0) {
    const hint = text.includes('-----BEGIN') ? 'a "-----BEGIN" line is malformed' : text.length === 0 ? 'the file is empty' : 'no "-----BEGIN ...-----" line';
    throw fail(`no PEM block found (${hint})`);
  }
  return blocks;
}

/** "a PRIVATE KEY", "an EC PRIVATE KEY": for messages about finding the wrong kind of block. */
export function aBlock(label: string): string {
  return `${/^[AEIOU]/.test(label) ? 'an' : 'a'} ${label}`;
}
