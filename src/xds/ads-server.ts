// keymesh's xDS server: Envoy's Aggregated Discovery Service (ADS), state of the world, over gRPC with mTLS.
//
// Design
// - Inputs are injected (src/xds/sources.ts): `authenticate(chain)` turns the TLS peer's SVID into a
//   ProxyIdentity {mesh, kind, name, spiffeId}; `source.configFor(proxy)` gives its EnvoyConfig (translate's
//   output) and `source.watch` says which proxies a change affects; `secrets.secretFor(proxy, name)` gives an
//   Envoy Secret only to a proxy allowed to have it.
// - TLS (credentials.ts): TLS 1.2+, a client certificate is required and chain-checked by Node against the
//   mesh anchors (grpc-js shows a handler the peer certificate only when TLS authorized it); keymesh then judges
//   the SVID with `authenticate`. No certificate, an unknown CA or a refused SVID: no stream.
// - The first request's `node.id` must name the proven identity (`mesh/<m>/virtualNode/<n>`,
//   `mesh/<m>/virtualGateway/<n>`, or the App Mesh ARN of one); otherwise PERMISSION_DENIED naming both. A later
//   request may omit the node but may not name another one.
// - Per stream, a snapshot: computed at stream start and again whenever a watch says the proxy is affected
//   (coalesced). It is checked (snapshot.ts: routes' clusters exist, EDS clusters have assignments, listeners'
//   RDS names exist, every resource survives encoding unchanged) before it replaces the published one; a bad one is logged and recorded
//   in the status, and the proxy keeps the previous configuration.
// - Versions are content hashes (sha256 of canonical JSON, 16 hex) over exactly the resources in a response, so
//   equal content means equal version everywhere. Every response has a fresh nonce.
// - Subscriptions: CDS/LDS are wildcard (all resources); EDS/RDS/SDS send the named resources that exist.
// - Requests: a non-empty `response_nonce` other than the last one sent for the type is stale and ignored.
//   ACK = matching nonce, `version_info` = the sent version, no error_detail: recorded as lastAck[type]. NACK =
//   matching nonce with error_detail: recorded {typeUrl, version, nonce, message, at} (the last NACK_HISTORY are
//   kept); the rejected version is not sent again (a response goes out only when its content differs from the
//   last one sent).
// - Placement: the first request's `node.metadata.keymesh` says where the proxy runs (node-metadata.ts: its
//   listeners' address and ports, its registration); a bad value refuses the stream (INVALID_ARGUMENT naming
//   the field). `onConnected` hears of each accepted stream (the endpoint registry registers the instance)
//   and what it returns is called when the stream ends.
// - Pushes go out in the order CDS, EDS, LDS, RDS, SDS, once the stream's queued work is done and no request
//   or change came for `coalesceMs` (10 ms; so a burst of first requests is answered in that order too).
//   All of a stream's work (authentication, requests, recomputes, pushes) runs one step at a time.
// - SDS over ADS: each requested name goes through `secretFor`; a name the proxy may not have is not sent,
//   and is logged and recorded (refusedSecrets). `secrets.watch` (optional) re-reads a proxy's secrets.
// - A stream does not outlive its credential: it ends (UNAUTHENTICATED) when the leaf certificate it
//   authenticated with expires (a timer at notAfter, re-armed in steps below setTimeout's limit; keymesh proxies
//   reconnect with their renewed SVID), and `closeWhere(predicate, reason)` ends (PERMISSION_DENIED) the streams
//   whose StreamCredential matches: the composition root calls it when the CA revokes an identity or a
//   certificate. A stream still authenticating when closeWhere is called is judged by it once authenticated, so
//   a revocation racing a handshake does not let the stream through. Each such end is logged with its reason.
// - Status: `proxies()` lists connected, authenticated streams (several Envoys may share an identity).
// - `close()` ends every stream, stops the watches and shuts the gRPC server down (forced after a grace period).
import * as grpc from '@grpc/grpc-js';
import type { X509Certificate } from '@peculiar/x509';
import { systemClock, type Clock } from '../base/clock.ts';
import { TYPE_URLS } from '../envoy/protos.ts';
import { x509 } from '../pki/provider.ts';
import { adsServiceDefinition, type DiscoveryRequest, type DiscoveryResponse } from '../envoy/ads-service.ts';
import { XdsServerCredentials, type XdsTlsMaterial } from './credentials.ts';
import { BadRequestError } from '../errors/index.ts';
import { nodeIdOf, nodeIdProblem } from './node-id.ts';
import { structToJson } from '../envoy/struct.ts';
import { DEFAULT_PLACEMENT, peerIp, placementOf, type ProxyPlacement } from './node-metadata.ts';
import { buildSnapshot, encodeChecked, isWildcardType, PUSH_ORDER, versionOf, type EncodedResource, type Snapshot } from './snapshot.ts';
import type { AffectedPredicate, Authenticate, ConfigSource, OnConnected, ProxyIdentity, SecretSource, StreamCredential, XdsLog } from './sources.ts';

export interface XdsServerOptions {
  readonly source: ConfigSource;
  readonly secrets: SecretSource;
  readonly authenticate: Authenticate;
  readonly tls: XdsTlsMaterial;
  readonly log?: XdsLog;
  readonly clock?: Clock;
  /** How long a stream waits for more requests or changes before responding (default 10 ms). */
  readonly coalesceMs?: number;
  /** Told when a stream's node is accepted, and (through what it returns) when that stream ends. */
  readonly onConnected?: OnConnected;
}

/** How many NACKs a stream's status remembers. */
export const NACK_HISTORY = 10;

export interface AckRecord {
  readonly version: string;
  readonly nonce: string;
  readonly at: number;
}

export interface NackRecord {
  readonly typeUrl: string;
  readonly version: string;
  readonly nonce: string;
  readonly message: string;
  readonly at: number;
}

export interface SentRecord {
  readonly version: string;
  readonly nonce: string;
  readonly resources: number;
  readonly at: number;
}

export interface ProxyStatus {
  /** Unique per stream in this process. */
  readonly stream: number;
  readonly identity: ProxyIdentity;
  readonly nodeId: string | undefined;
  readonly peer: string;
  readonly connectedAt: number;
  /** By type URL. */
  readonly lastSent: Readonly<Record<string, SentRecord>>;
  readonly lastAck: Readonly<Record<string, AckRecord>>;
  readonly lastNack: NackRecord | undefined;
  /** The latest NACKs, oldest first (at most NACK_HISTORY). */
  readonly nacks: readonly NackRecord[];
  /** Where the proxy says it runs (its node.metadata). */
  readonly placement: ProxyPlacement;
  readonly refusedSecrets: readonly { readonly name: string; readonly at: number }[];
  /** Why the latest configuration was not published (the proxy keeps the previous one). */
  readonly configError: { readonly problems: readonly string[]; readonly at: number } | undefined;
  /** Requests ignored for carrying an old nonce. */
  readonly staleRequests: number;
}

export interface XdsServer {
  /** Binds (e.g. '0.0.0.0:15010', '127.0.0.1:0') and returns the port. */
  listen(address: string): Promise<number>;
  proxies(): ProxyStatus[];
  /**
   * Ends, with PERMISSION_DENIED and a message naming the SPIFFE ID and `reason`, every authenticated stream whose
   * credential matches (and any stream authenticating now, once it is authenticated, if it matches). A
   * throwing predicate counts as a match. Returns how many open streams it ended.
   */
  closeWhere(predicate: (credential: StreamCredential) => boolean, reason: string | ((credential: StreamCredential) => string)): number;
  /** New anchors or server certificate, for new connections. */
  updateTls(material: XdsTlsMaterial): void;
  /** Ends every stream and shuts down; forced after `graceMs` (default 2000). */
  close(graceMs?: number): Promise<void>;
}

const KNOWN_TYPES = new Set<string>(Object.values(TYPE_URLS));
const NO_OP_LOG: XdsLog = () => {};

type Call = grpc.ServerDuplexStream<DiscoveryRequest, DiscoveryResponse>;

interface ClosureRule {
  readonly matches: (credential: StreamCredential) => boolean;
  readonly reason: (credential: StreamCredential) => string;
}

/** The reason `rule` ends a stream with `credential`, or undefined. */
function judge(rule: ClosureRule, credential: StreamCredential): string | undefined {
  let hit: boolean;
  try {
    hit = rule.matches(credential);
  } catch {
    hit = true;
  }
  if (!hit) return undefined;
  let reason: string;
  try {
    reason = rule.reason(credential);
  } catch (e) {
    reason = `a revocation check failed: ${errorText(e)}`;
  }
  return `the stream of ${credential.identity.spiffeId} was ended: ${reason}`;
}

/**
 * closeWhere's rules, kept only while some stream that began authenticating before them has not finished: such
 * a stream may have been authenticated against the state before the revocation.
 */
class ClosureRules {
  #rules: ClosureRule[] = [];
  #base = 0;
  readonly #open = new Map<object, number>();

  begin(token: object): void {
    this.#open.set(token, this.#base + this.#rules.length);
  }

  /** Ends `token`'s authentication; the reason a rule added since ends the stream, if one does. */
  finish(token: object, credential: StreamCredential | undefined): string | undefined {
    const from = this.#open.get(token);
    this.#open.delete(token);
    let reason: string | undefined;
    if (from !== undefined && credential) {
      for (const rule of this.#rules.slice(from - this.#base)) {
        reason = judge(rule, credential);
        if (reason !== undefined) break;
      }
    }
    if (this.#open.size === 0) {
      this.#base += this.#rules.length;
      this.#rules = [];
    }
    return reason;
  }

  add(rule: ClosureRule): void {
    if (this.#open.size > 0) this.#rules.push(rule);
  }
}

/** setTimeout's longest delay; longer waits are re-armed in steps. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Calls `fire` once `clock` reaches `at` (at once if it has), waiting in steps of at most `maxStepMs` so that
 * a far deadline does not overflow setTimeout. Unref'd. Returns a function that cancels it.
 */
export function timerAt(at: number, clock: Clock, fire: () => void, maxStepMs = MAX_TIMER_MS): () => void {
  let timer: NodeJS.Timeout | undefined;
  let cancelled = false;
  const arm = (): void => {
    if (cancelled) return;
    const left = at - clock.now();
    if (left <= 0) {
      timer = undefined;
      fire();
      return;
    }
    timer = setTimeout(arm, Math.min(left, maxStepMs));
    timer.unref();
  };
  arm();
  return () => {
    cancelled = true;
    clearTimeout(timer);
  };
}

interface StreamDeps {
  readonly rules: ClosureRules;
  readonly source: ConfigSource;
  readonly secrets: SecretSource;
  readonly authenticate: Authenticate;
  readonly log: XdsLog;
  readonly clock: Clock;
  readonly coalesceMs: number;
  readonly onConnected: OnConnected | undefined;
}

interface TypeState {
  names: Set<string>;
  sentVersion: string | undefined;
  sentNonce: string | undefined;
}

class StreamRefused extends Error {
  readonly code: grpc.status;
  constructor(code: grpc.status, message: string) {
    super(message);
    this.code = code;
  }
}

const errorText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

class AdsStream {
  readonly id: number;
  readonly #call: Call;
  readonly #opts: StreamDeps;
  readonly #onEnd: (s: AdsStream) => void;
  readonly #types = new Map<string, TypeState>();
  readonly #secretCache = new Map<string, EncodedResource | null>();
  readonly #connectedAt: number;
  #identity: ProxyIdentity | undefined;
  #credential: StreamCredential | undefined;
  #cancelExpiry: (() => void) | undefined;
  #nodeId: string | undefined;
  #placement: ProxyPlacement = DEFAULT_PLACEMENT;
  #release: Promise<(() => Promise<void> | void) | undefined> | undefined;
  #snapshot: Snapshot | undefined;
  #chain: Promise<void> = Promise.resolve();
  #pending = 0;
  #recomputeQueued = false;
  #nonces = 0;
  #ended = false;
  #flushTimer: NodeJS.Timeout | undefined;
  // status
  readonly #lastSent: Record<string, SentRecord> = {};
  readonly #lastAck: Record<string, AckRecord> = {};
  readonly #nacks: NackRecord[] = [];
  readonly #refused: { name: string; at: number }[] = [];
  #configError: { problems: string[]; at: number } | undefined;
  #stale = 0;

  constructor(id: number, call: Call, opts: StreamDeps, onEnd: (s: AdsStream) => void) {
    this.id = id;
    this.#call = call;
    this.#opts = opts;
    this.#onEnd = onEnd;
    this.#connectedAt = opts.clock.now();
    call.on('data', (req: DiscoveryRequest) => this.#enqueue(() => this.#handle(req)));
    call.on('end', () => this.#end(undefined));
    call.on('error', () => this.#finish());
    call.on('cancelled', () => this.#finish());
    call.on('close', () => this.#finish());
    this.#enqueue(() => this.#authenticate());
  }

  get identity(): ProxyIdentity | undefined {
    return this.#nodeId === undefined ? undefined : this.#identity;
  }

  status(): ProxyStatus | undefined {
    const identity = this.identity;
    if (!identity) return undefined;
    return {
      stream: this.id,
      identity,
      nodeId: this.#nodeId,
      peer: this.#call.getPeer(),
      connectedAt: this.#connectedAt,
      lastSent: { ...this.#lastSent },
      lastAck: { ...this.#lastAck },
      lastNack: this.#nacks.at(-1),
      nacks: [...this.#nacks],
      placement: this.#placement,
      refusedSecrets: [...this.#refused],
      configError: this.#configError,
      staleRequests: this.#stale,
    };
  }

  /** What the stream authenticated with; undefined until then. */
  get credential(): StreamCredential | undefined {
    return this.#credential;
  }

  /** Ends the stream because its credential may no longer be used; logged with the reason. */
  revoke(code: grpc.status, message: string): void {
    if (this.#ended) return;
    this.#opts.log('warn', 'xDS stream ended', {
      stream: this.id, nodeId: this.#nodeId, spiffeId: this.#credential?.identity.spiffeId, serial: this.#credential?.serial, reason: message,
    });
    this.#end(new StreamRefused(code, message));
  }

  /** A config change that may affect this proxy. */
  configChanged(): void {
    if (this.#recomputeQueued || !this.identity) return;
    this.#recomputeQueued = true;
    this.#enqueue(async () => {
      this.#recomputeQueued = false;
      await this.#recompute();
    });
  }

  secretsChanged(): void {
    if (!this.identity) return;
    this.#enqueue(async () => this.#secretCache.clear());
  }

  /** Server shutdown: end with OK; Envoy reconnects (to another replica). */
  shutdown(): void {
    this.#end(undefined);
  }

  /** Runs `op` after every queued one; when the queue is empty, schedules a flush (unless `op` is the flush). */
  #enqueue(op: () => Promise<void>, flushAfter = true): void {
    if (this.#ended) return;
    this.#pending++;
    this.#chain = this.#chain.then(async () => {
      try {
        if (!this.#ended) await op();
        if (--this.#pending === 0 && flushAfter && !this.#ended) this.#scheduleFlush();
      } catch (e) {
        if (e instanceof StreamRefused) this.#end(e);
        else {
          this.#opts.log('error', 'xDS stream failed', { stream: this.id, error: errorText(e) });
          this.#end(new StreamRefused(grpc.status.INTERNAL, 'keymesh could not serve this stream'));
        }
      }
    });
  }

  /** Debounced, so that a burst of requests (or of changes) is answered together, in push order. */
  #scheduleFlush(): void {
    if (this.#flushTimer) clearTimeout(this.#flushTimer);
    this.#flushTimer = setTimeout(() => {
      this.#flushTimer = undefined;
      this.#enqueue(() => this.#flush(), false);
    }, this.#opts.coalesceMs);
  }

  async #authenticate(): Promise<void> {
    const cert = this.#call.getAuthContext().sslPeerCertificate;
    if (!cert?.raw) throw new StreamRefused(grpc.status.UNAUTHENTICATED, 'a client certificate (the proxy\'s SVID) is required');
    let chain: X509Certificate[];
    try {
      chain = [new x509.X509Certificate(cert.raw)];
    } catch (e) {
      throw new StreamRefused(grpc.status.UNAUTHENTICATED, `the client certificate cannot be read: ${errorText(e)}`);
    }
    const leaf = chain[0]!;
    let identity: ProxyIdentity;
    this.#opts.rules.begin(this);
    try {
      identity = await this.#opts.authenticate(chain);
    } catch (e) {
      this.#opts.rules.finish(this, undefined);
      this.#opts.log('warn', 'xDS client refused', { peer: this.#call.getPeer(), error: errorText(e) });
      throw new StreamRefused(grpc.status.UNAUTHENTICATED, `the client certificate is not accepted: ${errorText(e)}`);
    }
    const credential: StreamCredential = { identity, certificate: leaf, serial: leaf.serialNumber, notAfter: leaf.notAfter.getTime() };
    this.#identity = identity;
    this.#credential = credential;
    const closedBy = this.#opts.rules.finish(this, credential);
    if (closedBy !== undefined) {
      this.revoke(grpc.status.PERMISSION_DENIED, closedBy);
      return;
    }
    if (this.#ended) return;
    this.#cancelExpiry = timerAt(credential.notAfter, this.#opts.clock, () => this.revoke(
      grpc.status.UNAUTHENTICATED,
      `the stream of ${identity.spiffeId} was ended: the certificate it authenticated with (serial ${credential.serial}) expired at ${new Date(credential.notAfter).toISOString()}; reconnect with the renewed SVID`,
    ));
  }

  async #handle(req: DiscoveryRequest): Promise<void> {
    const identity = this.#identity;
    if (!identity) return; // authentication failed; the stream is ending
    const nodeId = req.node?.id;
    if (this.#nodeId === undefined) {
      if (!nodeId) throw new StreamRefused(grpc.status.INVALID_ARGUMENT, 'the first DiscoveryRequest must carry node.id');
      const problem = nodeIdProblem(nodeId, identity);
      if (problem) {
        this.#opts.log('warn', 'xDS node id refused', { nodeId, identity: nodeIdOf(identity), spiffeId: identity.spiffeId });
        throw new StreamRefused(grpc.status.PERMISSION_DENIED, problem);
      }
      try {
        this.#placement = placementOf(structToJson(req.node?.metadata));
      } catch (e) {
        if (e instanceof BadRequestError) throw new StreamRefused(grpc.status.INVALID_ARGUMENT, e.message);
        throw e;
      }
      this.#nodeId = nodeId;
      this.#opts.log('info', 'xDS proxy connected', { stream: this.id, nodeId, spiffeId: identity.spiffeId });
      this.#connected(identity);
      await this.#recompute();
    } else if (nodeId && nodeId !== this.#nodeId) {
      throw new StreamRefused(grpc.status.PERMISSION_DENIED, `node.id changed on the stream from "${this.#nodeId}" to "${nodeId}"`);
    }

    const typeUrl = req.typeUrl ?? '';
    if (!KNOWN_TYPES.has(typeUrl)) {
      this.#opts.log('warn', 'xDS request for a type keymesh does not serve', { stream: this.id, typeUrl });
      return;
    }
    const nonce = req.responseNonce ?? '';
    let st = this.#types.get(typeUrl);
    if (nonce !== '' && nonce !== st?.sentNonce) {
      this.#stale++;
      return;
    }
    if (!st || nonce === '') {
      // A (re)subscription: whatever was sent before on this stream, send the current state.
      st = { names: new Set(), sentVersion: undefined, sentNonce: undefined };
      this.#types.set(typeUrl, st);
    }
    st.names = new Set(req.resourceNames ?? []);
    if (nonce === '') return;
    const at = this.#opts.clock.now();
    if (req.errorDetail) {
      const message = req.errorDetail.message ?? '';
      this.#nacks.push({ typeUrl, version: st.sentVersion ?? '', nonce, message, at });
      if (this.#nacks.length > NACK_HISTORY) this.#nacks.shift();
      this.#opts.log('warn', 'xDS proxy rejected configuration', { stream: this.id, nodeId: this.#nodeId, typeUrl, version: st.sentVersion, message });
    } else if (req.versionInfo === st.sentVersion && st.sentVersion !== undefined) {
      this.#lastAck[typeUrl] = { version: st.sentVersion, nonce, at };
    }
  }

  async #recompute(): Promise<void> {
    const identity = this.#identity!;
    const at = this.#opts.clock.now();
    let problems: string[];
    try {
      const result = buildSnapshot(await this.#opts.source.configFor(identity, this.#placement.options));
      if (result.ok) {
        this.#snapshot = result.snapshot;
        this.#configError = undefined;
        return;
      }
      problems = result.problems;
    } catch (e) {
      problems = [`the configuration could not be computed: ${errorText(e)}`];
    }
    this.#configError = { problems, at };
    this.#opts.log('warn', 'xDS configuration not published', { nodeId: nodeIdOf(identity), problems });
  }

  async #resources(typeUrl: string, st: TypeState): Promise<EncodedResource[] | undefined> {
    if (typeUrl === TYPE_URLS.secret) {
      if (st.names.size === 0) return undefined;
      const out: EncodedResource[] = [];
      for (const name of [...st.names].sort()) {
        const secret = await this.#secret(name);
        if (secret) out.push(secret);
      }
      return out;
    }
    const all = this.#snapshot?.resources.get(typeUrl);
    if (!all) return undefined;
    if (isWildcardType(typeUrl)) return [...all.values()];
    if (st.names.size === 0) return undefined;
    return [...st.names].sort().flatMap((n) => {
      const r = all.get(n);
      return r ? [r] : [];
    });
  }

  async #secret(name: string): Promise<EncodedResource | null> {
    if (this.#secretCache.has(name)) return this.#secretCache.get(name)!;
    const identity = this.#identity!;
    let encoded: EncodedResource | null = null;
    try {
      const secret = await this.#opts.secrets.secretFor(identity, name);
      if (secret) encoded = encodeChecked(TYPE_URLS.secret, name, { ...secret, name });
      else {
        this.#refused.push({ name, at: this.#opts.clock.now() });
        if (this.#refused.length > 50) this.#refused.shift();
        this.#opts.log('warn', 'xDS secret refused', { nodeId: this.#nodeId, spiffeId: identity.spiffeId, secret: name });
      }
    } catch (e) {
      this.#opts.log('error', 'xDS secret could not be read', { nodeId: this.#nodeId, secret: name, error: errorText(e) });
      return null; // not cached: tried again on the next flush
    }
    this.#secretCache.set(name, encoded);
    return encoded;
  }

  async #flush(): Promise<void> {
    for (const typeUrl of PUSH_ORDER) {
      const st = this.#types.get(typeUrl);
      if (!st || this.#ended) continue;
      const resources = await this.#resources(typeUrl, st);
      if (!resources) continue;
      const version = versionOf(resources);
      if (version === st.sentVersion) continue; // already sent (and maybe ACKed, or rejected: not again)
      const nonce = `${this.id}-${++this.#nonces}`;
      st.sentVersion = version;
      st.sentNonce = nonce;
      this.#lastSent[typeUrl] = { version, nonce, resources: resources.length, at: this.#opts.clock.now() };
      this.#call.write({
        versionInfo: version,
        typeUrl,
        nonce,
        resources: resources.map((r) => ({ type_url: typeUrl, value: Buffer.from(r.bytes) })),
      });
    }
  }

  /** Tells onConnected (e.g. the endpoint registry); its release runs when the stream ends. */
  #connected(identity: ProxyIdentity): void {
    const onConnected = this.#opts.onConnected;
    if (!onConnected) return;
    const fail = (e: unknown) => {
      this.#opts.log('error', 'xDS proxy registration failed', { stream: this.id, nodeId: this.#nodeId, error: errorText(e) });
      return undefined;
    };
    this.#release = onConnected({ identity, placement: this.#placement, peerAddress: peerIp(this.#call.getPeer()) }).catch(fail);
  }

  #released(): void {
    const release = this.#release;
    this.#release = undefined;
    void release?.then(async (r) => r?.()).catch((e: unknown) => {
      this.#opts.log('error', 'xDS proxy deregistration failed', { stream: this.id, nodeId: this.#nodeId, error: errorText(e) });
    });
  }

  #end(refusal: StreamRefused | undefined): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#flushTimer);
    this.#cancelExpiry?.();
    this.#released();
    try {
      if (refusal) this.#call.emit('error', { code: refusal.code, details: refusal.message });
      else this.#call.end();
    } catch {
      // the call is already gone
    }
    this.#onEnd(this);
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    clearTimeout(this.#flushTimer);
    this.#cancelExpiry?.();
    this.#released();
    this.#onEnd(this);
  }
}

export function createXdsServer(options: XdsServerOptions): XdsServer {
  const log = options.log ?? NO_OP_LOG;
  const clock = options.clock ?? systemClock;
  const credentials = new XdsServerCredentials(options.tls);
  const server = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  const streams = new Set<AdsStream>();
  let nextId = 0;
  let closed = false;

  const rules = new ClosureRules();
  const streamOpts: StreamDeps = { rules, source: options.source, secrets: options.secrets, authenticate: options.authenticate, log, clock, coalesceMs: options.coalesceMs ?? 10, onConnected: options.onConnected };
  server.addService(adsServiceDefinition(), {
    StreamAggregatedResources: (call: Call) => {
      if (closed) {
        call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'the xDS server is shutting down' });
        return;
      }
      streams.add(new AdsStream(++nextId, call, streamOpts, (s) => streams.delete(s)));
    },
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'keymesh serves state-of-the-world ADS only' });
    },
  });

  const affecting = (affected: AffectedPredicate, then: (s: AdsStream) => void): void => {
    for (const s of streams) {
      const id = s.identity;
      if (!id) continue;
      let hit: boolean;
      try {
        hit = affected(id);
      } catch {
        hit = true;
      }
      if (hit) then(s);
    }
  };
  const unwatch = [
    options.source.watch((affected) => affecting(affected, (s) => s.configChanged())),
    ...(options.secrets.watch ? [options.secrets.watch((affected) => affecting(affected, (s) => s.secretsChanged()))] : []),
  ];

  return {
    listen(address: string): Promise<number> {
      return new Promise((resolve, reject) => {
        server.bindAsync(address, credentials, (err, port) => (err ? reject(err) : resolve(port)));
      });
    },
    proxies(): ProxyStatus[] {
      return [...streams].flatMap((s) => {
        const st = s.status();
        return st ? [st] : [];
      }).sort((a, b) => a.stream - b.stream);
    },
    closeWhere(predicate, reason): number {
      const rule: ClosureRule = { matches: predicate, reason: typeof reason === 'string' ? () => reason : reason };
      rules.add(rule);
      let ended = 0;
      for (const s of [...streams]) {
        const credential = s.credential;
        const why = credential && judge(rule, credential);
        if (why === undefined) continue;
        s.revoke(grpc.status.PERMISSION_DENIED, why);
        ended++;
      }
      return ended;
    },
    updateTls(material: XdsTlsMaterial): void {
      credentials.update(material);
    },
    async close(graceMs = 2000): Promise<void> {
      if (closed) return;
      closed = true;
      for (const u of unwatch) u();
      for (const s of [...streams]) s.shutdown();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}
