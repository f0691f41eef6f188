// The endpoint registry: which instances serve each virtual node (the role Cloud Map plays for App Mesh).
//
// - A sidecar registers its node's instance when its ADS stream is accepted (`attach`) and holds a lease for
//   as long as it stays connected; when its last stream ends the lease runs `graceMs` more (default 30 s), so a
//   proxy that reconnects (a control-plane restart, a network blip) is never dropped from its clients' load
//   assignments. At start-up the registrations left by the previous process get the same grace: their
//   proxies were connected to it and are about to reconnect. A proxy that does not come back lapses.
// - An operator may register an instance that has no keymesh proxy (`register`, static, no lease) and remove
//   it (`deregister`); Cloud Map's RegisterInstance / DeregisterInstance.
// - Watchers hear the mesh of every change of membership (an instance added, moved or removed), not of lease
//   renewals, so proxies are only re-translated when their load assignments may change.
// All writes run one at a time, in call order.
import { isIP } from 'node:net';
import { systemClock, type Clock } from '../base/clock.ts';
import { BadRequestError, NotFoundError } from '../errors/index.ts';
import { endpointKeyText, type EndpointKey, type EndpointRecord, type EndpointStore } from '../store/endpoint-store.ts';

export const DEFAULT_ENDPOINT_GRACE_MS = 30_000;

export interface Registration {
  readonly mesh: string;
  readonly virtualNode: string;
  /** Default `<address>:<port>`. */
  readonly instance?: string | undefined;
  readonly address: string;
  readonly port: number;
  readonly ports?: readonly number[] | undefined;
}

export interface EndpointRegistryOptions {
  readonly store: EndpointStore;
  readonly clock?: Clock;
  readonly graceMs?: number;
  /** How often lapsed leases are removed (default: a fifth of the grace, at least 1 s). */
  readonly sweepEveryMs?: number;
  /** Background failures (the sweep); default: ignored. */
  readonly onError?: (what: string, e: unknown) => void;
}

const INSTANCE = /^[\x21-\x7e]{1,256}$/;

/** The registration with its defaults, or a BadRequestError naming what is wrong. */
export function checkRegistration(r: Registration): Required<Registration> {
  const where = `${r.mesh}/${r.virtualNode}`;
  if (!r.mesh || !r.virtualNode) throw new BadRequestError('An endpoint needs a mesh and a virtual node.');
  if (isIP(r.address) === 0) throw new BadRequestError(`Endpoint address "${r.address}" of ${where} is not an IP address.`);
  const checkPort = (p: number, what: string) => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new BadRequestError(`Endpoint ${what} ${String(p)} of ${where} is not a port (1-65535).`);
  };
  checkPort(r.port, 'port');
  const ports = [...new Set(r.ports ?? [])].filter((p) => p !== r.port).sort((a, b) => a - b);
  for (const p of ports) checkPort(p, 'port');
  const instance = r.instance ?? `${r.address.includes(':') ? `[${r.address}]` : r.address}:${r.port}`;
  if (!INSTANCE.test(instance)) throw new BadRequestError(`Endpoint instance id "${instance}" of ${where} must be 1-256 printable characters without spaces.`);
  return { mesh: r.mesh, virtualNode: r.virtualNode, instance, address: r.address, port: r.port, ports };
}

const sameMembership = (a: EndpointRecord | undefined, b: EndpointRecord): boolean =>
  a !== undefined && a.address === b.address && a.port === b.port && a.ports.join(',') === b.ports.join(',');

export class EndpointRegistry {
  readonly #store: EndpointStore;
  readonly #clock: Clock;
  readonly #graceMs: number;
  readonly #sweepEveryMs: number;
  readonly #onError: (what: string, e: unknown) => void;
  readonly #attached = new Map<string, number>();
  readonly #listeners = new Set<(mesh: string) => void>();
  #queue: Promise<unknown> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;

  constructor(o: EndpointRegistryOptions) {
    this.#store = o.store;
    this.#clock = o.clock ?? systemClock;
    this.#graceMs = o.graceMs ?? DEFAULT_ENDPOINT_GRACE_MS;
    this.#sweepEveryMs = o.sweepEveryMs ?? Math.max(1000, Math.floor(this.#graceMs / 5));
    this.#onError = o.onError ?? (() => {});
  }

  /** Gives the previous process's proxy registrations their grace and starts removing lapsed leases. */
  async start(): Promise<void> {
    await this.#serial(() => this.#store.leaseConnectedEndpoints(this.#clock.now() + this.#graceMs));
    this.#timer = setInterval(() => void this.sweep().catch((e: unknown) => this.#onError('could not remove lapsed endpoints', e)), this.#sweepEveryMs);
    this.#timer.unref();
  }

  /**
   * A connected proxy's instance: registered (or renewed) now, leased until `release` is called for its last
   * attachment plus the grace period.
   */
  async attach(registration: Registration): Promise<() => Promise<void>> {
    const r = checkRegistration(registration);
    const key = endpointKeyText(r);
    await this.#serial(async () => {
      this.#attached.set(key, (this.#attached.get(key) ?? 0) + 1);
      await this.#put({ ...r, source: 'proxy', registeredAt: this.#clock.now(), expiresAt: null });
    });
    let released = false;
    return async () => {
      if (released) return;
      released = true;
      await this.#serial(async () => {
        const left = (this.#attached.get(key) ?? 1) - 1;
        if (left > 0) {
          this.#attached.set(key, left);
          return;
        }
        this.#attached.delete(key);
        await this.#store.setEndpointExpiry(r, this.#clock.now() + this.#graceMs);
      });
    };
  }

  /** An operator's registration of an instance without a keymesh proxy: kept until deregistered. */
  async register(registration: Registration): Promise<EndpointRecord> {
    const r = checkRegistration(registration);
    const record: EndpointRecord = { ...r, source: 'static', registeredAt: this.#clock.now(), expiresAt: null };
    await this.#serial(() => this.#put(record));
    return record;
  }

  async deregister(key: EndpointKey): Promise<EndpointRecord> {
    return this.#serial(async () => {
      const gone = await this.#store.deleteEndpoint(key);
      if (!gone) throw new NotFoundError(`Endpoint ${key.instance} of ${key.mesh}/${key.virtualNode} is not registered.`);
      this.#attached.delete(endpointKeyText(key));
      this.#changed(gone.mesh);
      return gone;
    });
  }

  list(filter: { mesh?: string } = {}): Promise<EndpointRecord[]> {
    return this.#store.listEndpoints(filter);
  }

  /** Removes the registrations whose lease has lapsed; returns them. */
  async sweep(): Promise<EndpointRecord[]> {
    return this.#serial(async () => {
      const gone = await this.#store.deleteExpiredEndpoints(this.#clock.now());
      for (const mesh of new Set(gone.map((r) => r.mesh))) this.#changed(mesh);
      return gone;
    });
  }

  /** `listener(mesh)` after every change of a mesh's membership. Returns a function that stops the watch. */
  watch(listener: (mesh: string) => void): () => void {
    const entry = (mesh: string) => listener(mesh);
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  }

  /** Stops the sweep and waits for queued writes. Leases stay in the store for the next process. */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    this.#listeners.clear();
    await this.#queue.catch(() => {});
  }

  async #put(record: EndpointRecord): Promise<void> {
    const before = await this.#store.getEndpoint(record);
    await this.#store.putEndpoint(record);
    if (!sameMembership(before, record)) this.#changed(record.mesh);
  }

  #changed(mesh: string): void {
    for (const l of [...this.#listeners]) {
      try {
        l(mesh);
      } catch (e) {
        this.#onError('an endpoint watcher failed', e);
      }
    }
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(op, op);
    this.#queue = run.catch(() => {});
    return run;
  }
}
