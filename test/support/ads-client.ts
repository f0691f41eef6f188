// A scripted Envoy for integration tests against a real `keymesh server`: one ADS stream (state of the world,
// xDS v3) over grpc-js with mutual TLS, authenticated with an SVID the test bootstrapped through the identity
// endpoint, pinning the control-plane CA. Two ways to drive it:
//
// - by hand: `request`, `ack`, `nack`, and `next(typeUrl)` to read decoded responses with a bounded wait;
// - like Envoy (`followLikeEnvoy`): subscribe CDS and LDS, ACK every response, subscribe RDS to the route
//   configurations the listeners name and SDS to the secrets the clusters and listeners fetch over ADS (an
//   SdsSecretConfig with an sdsConfig; a name-only reference is a static secret Envoy has locally), and re-send
//   a subscription when those names change. `holdAcks(type)` makes it withhold its ACKs for a type (it keeps
//   receiving), `releaseAcks(type)` ACKs the latest response of that type and goes back to ACKing.
//
// Every wait has a deadline and fails with a message naming what was awaited and what was seen.
import { execFile } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { decodeResource, TYPE_URLS } from '../../src/envoy/protos.ts';
import { jsonToStruct } from '../../src/envoy/struct.ts';
import { adsClientConstructor, type DiscoveryRequest, type DiscoveryResponse } from '../../src/envoy/ads-service.ts';

export const T = TYPE_URLS;

/** The name on the control-plane certificate (xDS server and identity endpoint), whatever address is dialled. */
export const CONTROL_PLANE_NAME = 'keymesh-control-plane';

const SHORT: Record<string, string> = {
  [T.cluster]: 'CDS', [T.clusterLoadAssignment]: 'EDS', [T.listener]: 'LDS', [T.routeConfiguration]: 'RDS', [T.secret]: 'SDS',
};
/** CDS, LDS, ... for messages. */
export const shortType = (typeUrl: string): string => SHORT[typeUrl] ?? typeUrl;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` (sync or async) until it returns something other than undefined/false; fails after `timeoutMs`. */
export async function waitFor<V>(what: string, check: () => V | undefined | false | Promise<V | undefined | false>, timeoutMs: number, intervalMs = 50): Promise<V> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting until ${what}`);
    await sleep(intervalMs);
  }
}

// --- SVIDs from the identity endpoint ------------------------------------------------------------------------

export interface Svid {
  readonly spiffeId: string;
  readonly keyPem: string;
  /** Leaf first. */
  readonly certChainPem: string;
  readonly bundlePem: string;
  readonly serial: string;
  readonly notAfter: number;
}

function run(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${cmd} ${args.join(' ')} failed: ${error.message}\n${stdout}${stderr}`));
      else resolve(stdout);
    });
  });
}

/**
 * What a proxy does to get its first SVID: its own P-256 key and a CSR (openssl, files in `workDir`), then
 * POST /identity/v1/bootstrap with the join token, verifying the endpoint as keymesh-control-plane against
 * the pinned control-plane CA. The key never leaves the test.
 */
export async function bootstrapSvid(o: { identityUrl: string; controlPlaneCaPem: string; joinToken: string; workDir: string; name: string }): Promise<Svid> {
  const key = join(o.workDir, `${o.name}-${Date.now()}-${Math.random().toString(16).slice(2, 8)}.key`);
  await run('openssl', ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key]);
  const csr = await run('openssl', ['req', '-new', '-key', key, '-subj', '/']);
  const answer = await postJson(new URL('/identity/v1/bootstrap', o.identityUrl), o.controlPlaneCaPem, { joinToken: o.joinToken, csr });
  if (answer.status !== 200) throw new Error(`bootstrap of ${o.name} answered ${answer.status}: ${answer.text}`);
  const body = JSON.parse(answer.text) as { spiffeId: string; certChainPem: string; bundlePem: string; serial: string; notAfter: number };
  return { spiffeId: body.spiffeId, keyPem: await readFile(key, 'utf8'), certChainPem: body.certChainPem, bundlePem: body.bundlePem, serial: body.serial, notAfter: body.notAfter };
}

function postJson(url: URL, caPem: string, body: unknown): Promise<{ status: number; text: string }> {
  const payload = Buffer.from(JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, {
      method: 'POST', ca: caPem, servername: CONTROL_PLANE_NAME, minVersion: 'TLSv1.2', agent: false, timeout: 15_000,
      headers: { 'content-type': 'application/json', 'content-length': payload.length },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`POST ${url.href}: no answer within 15 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

// --- what a configuration refers to -----------------------------------------------------------------------

function walk(value: unknown, visit: (o: Record<string, unknown>) => void): void {
  if (Array.isArray(value)) {
    for (const v of value) walk(v, visit);
  } else if (value !== null && typeof value === 'object') {
    visit(value as Record<string, unknown>);
    for (const v of Object.values(value)) walk(v, visit);
  }
}

/** The clusters whose endpoints Envoy fetches over EDS (type EDS), sorted. */
export function edsClusterNames(clusters: readonly Record<string, any>[]): string[] {
  return clusters.filter((c) => c.type === 'EDS').map((c) => String(c.edsClusterConfig?.serviceName || c.name)).sort();
}

/** The secrets Envoy fetches over SDS for these resources: every SdsSecretConfig that has an sdsConfig. */
export function sdsSecretNames(resources: readonly unknown[]): string[] {
  const names = new Set<string>();
  walk(resources, (o) => {
    if (typeof o.name === 'string' && o.sdsConfig !== null && typeof o.sdsConfig === 'object') names.add(o.name);
  });
  return [...names].sort();
}

/** The route configurations listeners take from RDS. */
export function routeConfigNames(resources: readonly unknown[]): string[] {
  const names = new Set<string>();
  walk(resources, (o) => {
    const rds = o.rds as Record<string, unknown> | undefined;
    if (rds && typeof rds === 'object' && typeof rds.routeConfigName === 'string') names.add(rds.routeConfigName);
  });
  return [...names].sort();
}

// --- the client --------------------------------------------------------------------------------------------

export interface AdsResponse {
  /** Order of arrival on this stream, from 1. */
  readonly seq: number;
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
  /** Decoded with Envoy's protos (JSON form: Any fields expanded with '@type'). */
  readonly resources: Record<string, any>[];
  readonly at: number;
}

export interface EndStatus {
  readonly code: number;
  readonly details: string;
}

export interface AdsClientOptions {
  /** host:port of the xDS server. */
  readonly address: string;
  /** The control-plane CA (PEM) the server's certificate must chain to. */
  readonly controlPlaneCaPem: string;
  readonly svid: { readonly keyPem: string; readonly certChainPem: string };
  /** node.id of the first request: `mesh/M/virtualNode/N`, or an App Mesh ARN. */
  readonly nodeId: string;
  /** A label for messages (default: the node id). */
  readonly label?: string;
  /** node.metadata (plain JSON), e.g. keymesh's placement `{ keymesh: { ingress_port: 15010 } }`. */
  readonly metadata?: Readonly<Record<string, unknown>>;
}

export class AdsClient {
  readonly nodeId: string;
  readonly label: string;
  readonly #metadata: Readonly<Record<string, unknown>> | undefined;
  readonly #client: grpc.Client;
  readonly #call: grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;
  readonly #received: AdsResponse[] = [];
  /** Per type, the seq after which `next` looks. */
  readonly #cursor = new Map<string, number>();
  readonly #waiters = new Set<() => void>();
  #status: EndStatus | undefined;
  #nodeSent = false;
  #closed = false;
  // Envoy-like behaviour
  #envoyLike = false;
  readonly #held = new Set<string>();
  readonly #names = new Map<string, string[]>();
  readonly #lastNonce = new Map<string, string>();
  readonly #acked = new Map<string, AdsResponse>();
  readonly #accepted = new Map<string, AdsResponse>();

  constructor(o: AdsClientOptions) {
    this.nodeId = o.nodeId;
    this.label = o.label ?? o.nodeId;
    this.#metadata = o.metadata;
    const Client = adsClientConstructor();
    const creds = grpc.credentials.createSsl(Buffer.from(o.controlPlaneCaPem), Buffer.from(o.svid.keyPem), Buffer.from(o.svid.certChainPem));
    this.#client = new Client(o.address, creds, {
      'grpc.ssl_target_name_override': CONTROL_PLANE_NAME,
      'grpc.default_authority': CONTROL_PLANE_NAME,
      // Each client is its own Envoy: its own connection and TLS session with its own SVID.
      'grpc.use_local_subchannel_pool': 1,
    });
    this.#call = (this.#client as unknown as { StreamAggregatedResources(): grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse> }).StreamAggregatedResources();
    this.#call.on('data', (r: DiscoveryResponse) => this.#onResponse(r));
    this.#call.on('error', (e: grpc.ServiceError) => this.#ended({ code: e.code, details: e.details }));
    this.#call.on('status', (s: grpc.StatusObject) => this.#ended({ code: s.code, details: s.details }));
  }

  /** How the stream ended; undefined while it is open. */
  get status(): EndStatus | undefined {
    return this.#status;
  }

  /** Every response received so far, of one type or all, in order of arrival. */
  received(typeUrl?: string): AdsResponse[] {
    return this.#received.filter((r) => typeUrl === undefined || r.typeUrl === typeUrl);
  }

  latest(typeUrl: string): AdsResponse | undefined {
    return this.received(typeUrl).at(-1);
  }

  /** The last response of the type this client ACKed. */
  lastAcked(typeUrl: string): AdsResponse | undefined {
    return this.#acked.get(typeUrl);
  }

  // --- by hand -------------------------------------------------------------------------------------------

  request(typeUrl: string, r: { versionInfo?: string; resourceNames?: readonly string[]; nonce?: string; error?: string } = {}): void {
    if (this.#status) throw new Error(`${this.label}: the stream has ended (${this.#status.code} ${this.#status.details})`);
    const msg: DiscoveryRequest = { typeUrl, versionInfo: r.versionInfo ?? '', resourceNames: [...(r.resourceNames ?? [])], responseNonce: r.nonce ?? '' };
    if (r.error !== undefined) msg.errorDetail = { code: grpc.status.INVALID_ARGUMENT, message: r.error };
    if (!this.#nodeSent) msg.node = { id: this.nodeId, cluster: 'keymesh-test', ...(this.#metadata ? { metadata: jsonToStruct(this.#metadata) } : {}) };
    this.#nodeSent = true;
    this.#call.write(msg);
  }

  ack(r: AdsResponse, resourceNames?: readonly string[]): void {
    this.request(r.typeUrl, { versionInfo: r.versionInfo, nonce: r.nonce, resourceNames: resourceNames ?? this.#names.get(r.typeUrl) ?? [] });
    this.#acked.set(r.typeUrl, r);
  }

  nack(r: AdsResponse, message: string): void {
    const previous = this.#acked.get(r.typeUrl)?.versionInfo ?? '';
    this.request(r.typeUrl, { versionInfo: previous, nonce: r.nonce, error: message, resourceNames: this.#names.get(r.typeUrl) ?? [] });
  }

  /**
   * The next response of `typeUrl` after the last one `next` returned for that type (or after `after`, a seq),
   * that satisfies `match`. Fails after `timeoutMs`, or at once when the stream ends.
   */
  async next(typeUrl: string, o: { timeoutMs?: number; match?: (r: AdsResponse) => boolean; what?: string; after?: number } = {}): Promise<AdsResponse> {
    const timeoutMs = o.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const from = o.after ?? this.#cursor.get(typeUrl) ?? 0;
    for (;;) {
      const hit = this.#received.find((r) => r.typeUrl === typeUrl && r.seq > from && (!o.match || o.match(r)));
      if (hit) {
        this.#cursor.set(typeUrl, Math.max(this.#cursor.get(typeUrl) ?? 0, hit.seq));
        return hit;
      }
      const what = `${shortType(typeUrl)} response${o.what ? ` (${o.what})` : ''} on ${this.label}`;
      if (this.#status) throw new Error(`waiting for a ${what}: the stream ended first: ${this.#status.code} ${this.#status.details}`);
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.received(typeUrl).map((r) => r.versionInfo).join(', ') || 'none';
        throw new Error(`no ${what} within ${timeoutMs} ms (${shortType(typeUrl)} versions received: ${seen})`);
      }
      await this.#wait(left);
    }
  }

  /** How the stream ended; fails after `timeoutMs`. */
  async ended(timeoutMs = 10_000): Promise<EndStatus> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#status) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`the stream of ${this.label} did not end within ${timeoutMs} ms`);
      await this.#wait(left);
    }
    return this.#status;
  }

  // --- like Envoy ----------------------------------------------------------------------------------------

  /** Subscribes CDS and LDS (wildcard) and from now on ACKs and follows references as Envoy does. */
  followLikeEnvoy(): this {
    this.#envoyLike = true;
    this.#names.set(T.cluster, []);
    this.#names.set(T.listener, []);
    this.request(T.cluster);
    this.request(T.listener);
    return this;
  }

  /** Stops ACKing responses of this type (they are still received and recorded). */
  holdAcks(typeUrl: string): void {
    this.#held.add(typeUrl);
  }

  /** ACKs the latest response of this type, if not ACKed yet, and ACKs again from now on. */
  releaseAcks(typeUrl: string): void {
    this.#held.delete(typeUrl);
    const latest = this.latest(typeUrl);
    if (latest && this.#acked.get(typeUrl) !== latest) this.#accept(latest);
  }

  /** The names this client subscribes to for a type (Envoy-like mode). */
  subscribed(typeUrl: string): readonly string[] {
    return this.#names.get(typeUrl) ?? [];
  }

  /** Waits until this client has ACKed a response of `typeUrl` satisfying `match`; returns it. */
  async acked(typeUrl: string, match: (r: AdsResponse) => boolean, what: string, timeoutMs = 10_000): Promise<AdsResponse> {
    return waitFor(`${this.label} has ACKed ${shortType(typeUrl)} ${what}`, () => {
      if (this.#status) throw new Error(`${this.label}: the stream ended: ${this.#status.code} ${this.#status.details}`);
      const r = this.#acked.get(typeUrl);
      return r && match(r) ? r : undefined;
    }, timeoutMs, 20);
  }

  /** Ends the stream and the connection (again: no effect). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#call.cancel();
    this.#client.close();
  }

  // --- internals -----------------------------------------------------------------------------------------

  #onResponse(r: DiscoveryResponse): void {
    const decoded: AdsResponse = {
      seq: this.#received.length + 1,
      versionInfo: r.versionInfo,
      typeUrl: r.typeUrl,
      nonce: r.nonce,
      resources: (r.resources ?? []).map((a) => decodeResource(a.type_url, a.value)),
      at: Date.now(),
    };
    this.#received.push(decoded);
    this.#lastNonce.set(r.typeUrl, r.nonce);
    if (this.#envoyLike && !this.#held.has(r.typeUrl) && !this.#status) this.#accept(decoded);
    this.#wake();
  }

  /** ACK, then subscribe to what the accepted configuration refers to (Envoy: make before break). */
  #accept(r: AdsResponse): void {
    if (this.#status) return;
    this.ack(r);
    this.#accepted.set(r.typeUrl, r);
    if (r.typeUrl === T.cluster || r.typeUrl === T.listener) {
      const config = [...(this.#accepted.get(T.cluster)?.resources ?? []), ...(this.#accepted.get(T.listener)?.resources ?? [])];
      this.#follow(T.secret, sdsSecretNames(config));
    }
    if (r.typeUrl === T.cluster) this.#follow(T.clusterLoadAssignment, edsClusterNames(r.resources));
    if (r.typeUrl === T.listener) this.#follow(T.routeConfiguration, routeConfigNames(r.resources));
  }

  /** A new subscription for a named type when the names change: the last ACKed version, the latest nonce. */
  #follow(typeUrl: string, names: string[]): void {
    const current = this.#names.get(typeUrl);
    if (current !== undefined && current.join('\n') === names.join('\n')) return;
    if (current === undefined && names.length === 0) return;
    this.#names.set(typeUrl, names);
    this.request(typeUrl, { versionInfo: this.#acked.get(typeUrl)?.versionInfo ?? '', nonce: this.#lastNonce.get(typeUrl) ?? '', resourceNames: names });
  }

  #ended(s: EndStatus): void {
    this.#status ??= s;
    this.#wake();
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  #wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.add(done);
    });
  }
}
