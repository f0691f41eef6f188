// Continuous traffic for the migration walkthrough: the client application's requests, sent through its
// sidecar's egress listener on a few keep-alive connections at a steady rate, every answer checked. It is bounded
// in count and in time (it stops by itself at either bound, and says which), and it keeps the first failures with
// their reasons, since the walkthrough's claim is that none happen.
import { Agent, request } from 'node:http';

export interface LoadOptions {
  /** Where the requests go (the sidecar's egress listener), e.g. http://127.0.0.101:15001/. */
  readonly url: string;
  /** The Host header: the virtual service the application calls. */
  readonly host: string;
  /** Concurrent keep-alive connections, one request in flight on each. */
  readonly connections: number;
  /** Requests per second, all connections together. */
  readonly ratePerSecond: number;
  /** Bounds: the loop stops by itself after this many requests or this long, whichever comes first. */
  readonly maxRequests: number;
  readonly maxMs: number;
  /** null when the answer is right, otherwise what is wrong with it. */
  readonly check: (status: number, body: string) => string | null;
  /** Time allowed for one request (default 5 s). */
  readonly requestTimeoutMs?: number;
}

export interface LoadCounts {
  readonly sent: number;
  readonly ok: number;
  readonly failed: number;
}

export interface LoadFailure {
  /** Milliseconds since the loop started. */
  readonly atMs: number;
  readonly reason: string;
}

/** How many failures are kept with their reasons (all are counted). */
const KEPT_FAILURES = 20;

function validate(o: LoadOptions): void {
  const whole = (n: number, min: number) => Number.isInteger(n) && n >= min;
  if (!whole(o.connections, 1)) throw new Error(`load: connections must be a whole number >= 1, got ${o.connections}`);
  if (!(o.ratePerSecond > 0 && Number.isFinite(o.ratePerSecond))) throw new Error(`load: ratePerSecond must be > 0, got ${o.ratePerSecond}`);
  if (!whole(o.maxRequests, 1)) throw new Error(`load: maxRequests must be a whole number >= 1, got ${o.maxRequests}`);
  if (!whole(o.maxMs, 1)) throw new Error(`load: maxMs must be a whole number >= 1, got ${o.maxMs}`);
}

export class LoadLoop {
  readonly #o: LoadOptions;
  readonly #agent: Agent;
  #startedAt = 0;
  #sent = 0;
  #ok = 0;
  #failed = 0;
  readonly #failures: LoadFailure[] = [];
  #stopping = false;
  #endedBy: 'stopped' | 'max-requests' | 'max-time' | undefined;
  #workers: Promise<void>[] = [];
  readonly #sleeps = new Set<{ timer: NodeJS.Timeout; wake: () => void }>();

  constructor(options: LoadOptions) {
    validate(options);
    this.#o = options;
    // Exactly `connections` sockets, kept open between requests, as an application's HTTP client pool.
    this.#agent = new Agent({ keepAlive: true, maxSockets: options.connections, maxFreeSockets: options.connections });
  }

  start(): void {
    if (this.#startedAt !== 0) throw new Error('load: already started');
    this.#startedAt = Date.now();
    this.#workers = Array.from({ length: this.#o.connections }, (_v, i) => this.#worker(i));
  }

  get counts(): LoadCounts {
    return { sent: this.#sent, ok: this.#ok, failed: this.#failed };
  }

  /** The first failures, with their reasons. */
  get failures(): readonly LoadFailure[] {
    return this.#failures;
  }

  /** Why the loop ended (undefined while it runs): stopped by its owner, or a bound reached. */
  get endedBy(): 'stopped' | 'max-requests' | 'max-time' | undefined {
    return this.#endedBy;
  }

  /** Stops sending, waits for the requests in flight, closes the connections. Idempotent. */
  async stop(): Promise<LoadCounts> {
    this.#end('stopped');
    await Promise.all(this.#workers);
    this.#agent.destroy();
    return this.counts;
  }

  #end(why: 'stopped' | 'max-requests' | 'max-time'): void {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#endedBy = why;
    for (const s of this.#sleeps) {
      clearTimeout(s.timer);
      s.wake();
    }
    this.#sleeps.clear();
  }

  /** One connection's loop: a request, its answer, then a pause to keep the rate (each worker its share). */
  async #worker(index: number): Promise<void> {
    const intervalMs = (1000 * this.#o.connections) / this.#o.ratePerSecond;
    // Spread the workers over one interval so that the requests do not come in bursts of `connections`.
    let next = this.#startedAt + (intervalMs * index) / this.#o.connections;
    for (;;) {
      await this.#sleepUntil(next);
      if (this.#stopping) return;
      if (this.#sent >= this.#o.maxRequests) return this.#end('max-requests');
      if (Date.now() - this.#startedAt >= this.#o.maxMs) return this.#end('max-time');
      this.#sent++;
      const problem = await this.#once();
      if (problem === null) this.#ok++;
      else {
        this.#failed++;
        if (this.#failures.length < KEPT_FAILURES) this.#failures.push({ atMs: Date.now() - this.#startedAt, reason: problem });
      }
      // A slow answer does not earn a burst afterwards: the schedule never falls behind the present.
      next = Math.max(next + intervalMs, Date.now());
    }
  }

  #sleepUntil(at: number): Promise<void> {
    const ms = at - Date.now();
    if (ms <= 0 || this.#stopping) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = { timer: setTimeout(() => { this.#sleeps.delete(entry); resolve(); }, ms), wake: resolve };
      this.#sleeps.add(entry);
    });
  }

  /** One request; null when the answer passed the check, otherwise why not. */
  #once(): Promise<string | null> {
    const timeoutMs = this.#o.requestTimeoutMs ?? 5_000;
    return new Promise((resolve) => {
      const req = request(this.#o.url, { agent: this.#agent, headers: { host: this.#o.host, 'user-agent': 'keymesh-demo-load' } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => resolve(this.#o.check(res.statusCode ?? 0, body)));
        res.on('error', (e) => resolve(`the answer broke off: ${e.message}`));
      });
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
      req.on('error', (e: NodeJS.ErrnoException) => resolve(`no answer: ${e.code ?? e.message}`));
      req.end();
    });
  }
}
