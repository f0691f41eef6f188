// Looking at the running mesh the way the seeds do it with curl: a request through the gateway (status and
// body), and the proxies' Envoy-compatible `/stats` (and `/certs`) read from their admin ports. All of it is
// asynchronous: the application and the proxies run in this very process and must keep serving meanwhile.
import { request } from 'node:http';
import type { CertsJson } from '../../proxy/admin/certs.ts';

export interface HttpAnswer {
  /** The HTTP status, or 0 when there was no answer (refused, reset, timed out). */
  readonly status: number;
  readonly body: string;
  /** Why there was no answer. */
  readonly error?: string;
}

/** GET on a new connection each time (as curl does), bounded by `timeoutMs`; `headers` as curl's -H. */
export function httpGet(url: string, timeoutMs = 10_000, headers: Readonly<Record<string, string>> = {}): Promise<HttpAnswer> {
  return new Promise((resolve) => {
    const req = request(url, { agent: false, headers: { 'user-agent': 'keymesh-demo', ...headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ status: 0, body, error: e.message }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ status: 0, body: '', error: e.code === 'ECONNREFUSED' ? 'connection refused' : e.message }));
    req.end();
  });
}

/** `200 white`, `503 upstream connect error ...`, or `no answer: connection refused`; the body cut at `maxBody`. */
export function describeAnswer(a: HttpAnswer, maxBody = 400): string {
  if (a.status === 0) return `no answer: ${a.error ?? 'unknown error'}`;
  const body = a.body.trim().replace(/\s+/g, ' ');
  return `${a.status} ${body.length > maxBody ? `${body.slice(0, maxBody)}...` : body}`.trimEnd();
}

/** A proxy's `/stats` as Envoy prints it (`name: value` lines), as a map of the numeric ones. */
export class Stats {
  readonly #values: ReadonlyMap<string, number>;
  readonly lines: readonly string[];

  constructor(text: string) {
    this.lines = text.split('\n').filter((l) => l !== '');
    const values = new Map<string, number>();
    for (const line of this.lines) {
      const m = /^(\S+): (-?\d+(?:\.\d+)?)$/.exec(line);
      if (m) values.set(m[1] as string, Number(m[2]));
    }
    this.#values = values;
  }

  /** A counter's value; 0 when the proxy has not emitted it (yet), as Envoy does not either. */
  get(name: string): number {
    return this.#values.get(name) ?? 0;
  }

  /** `curl -s .../stats | grep -E PATTERN`: the matching lines. */
  grep(pattern: RegExp): string[] {
    return this.lines.filter((l) => pattern.test(l));
  }
}

/**
 * Reads a proxy's stats from its admin port: by default those ever incremented or set (`?usedonly`, as Envoy),
 * which leaves out what Envoy would not have emitted yet (the seed: "no results until a TLS connection
 * occurs"); all of them with `usedOnly` false (a seed's plain `curl .../stats`).
 */
export async function readStats(adminHost: string, adminPort: number, usedOnly = true): Promise<Stats> {
  const a = await httpGet(`http://${adminHost}:${adminPort}/stats${usedOnly ? '?usedonly' : ''}`, 5_000);
  if (a.status !== 200) throw new Error(`reading the stats on ${adminHost}:${adminPort}: ${describeAnswer(a)}`);
  return new Stats(a.body);
}

/** A proxy's `/certs` (Envoy's format): per TLS context, the trusted CAs and the certificates it presents. */
export async function readCerts(adminHost: string, adminPort: number): Promise<CertsJson> {
  const a = await httpGet(`http://${adminHost}:${adminPort}/certs`, 5_000);
  if (a.status !== 200) throw new Error(`reading the certificates on ${adminHost}:${adminPort}: ${describeAnswer(a)}`);
  return JSON.parse(a.body) as CertsJson;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or a rejection naming `what` once `ms` have passed. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} (after ${ms / 1000} s)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
