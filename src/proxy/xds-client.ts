// The proxy's side of ADS (state of the world, xDS v3 over gRPC with mTLS), behaving as Envoy does:
//
// - Subscribes to clusters and listeners (wildcard) on every stream, then to what accepted resources refer to:
//   the ClusterLoadAssignments of EDS clusters, the RouteConfigurations that listeners name over RDS and the
//   secrets named with an SDS config. Subscriptions follow every accepted change.
// - Each response goes to `accept(typeUrl, resources)`; a refusal (a message) is NACKed with that message and
//   the previous resources stay in force (the rejected version is remembered, so the same content is not
//   applied twice); otherwise the response is ACKed.
// - Keeps everything it accepted across disconnects: the proxy serves on its last good configuration while the
//   control plane is away. Reconnects with full-jitter exponential backoff (0.5 s up to 30 s), asking for what
//   it holds (version_info of the last accepted response per type) so the server need not resend equal state.
// - Each connection attempt reads the current credentials (the SVID renews; keymesh ends a stream when the
//   certificate it authenticated with expires) and pins the control-plane CA, verifying the server as
//   `keymesh-control-plane`.
import * as grpc from '@grpc/grpc-js';
import { adsClientConstructor, type DiscoveryRequest, type DiscoveryResponse } from '../envoy/ads-service.ts';
import { decodeResource, TYPE_URLS } from '../envoy/protos.ts';
import { jsonToStruct } from '../envoy/struct.ts';
import { resourceReferences } from './references.ts';

export const CONTROL_PLANE_NAME = 'keymesh-control-plane';

export type Resources = ReadonlyMap<string, Record<string, unknown>>;

/** Accepts (undefined) or refuses (the NACK's message) the complete new set of resources of one type. */
export type Accept = (typeUrl: string, resources: Resources, version: string) => string | undefined;

export interface XdsClientOptions {
  /** host:port of keymesh's xDS server. */
  readonly address: string;
  readonly controlPlaneCaPem: string;
  /** The current SVID (leaf first) and its key; read at every connection attempt. */
  readonly credentials: () => { readonly certChainPem: string; readonly keyPem: string };
  readonly node: { readonly id: string; readonly cluster: string; readonly metadata?: Readonly<Record<string, unknown>> };
  readonly accept: Accept;
  /** Connection state changes and NACKs, for logs and stats. */
  readonly onEvent?: (event: XdsClientEvent) => void;
  readonly serverName?: string;
  readonly backoff?: { readonly initialMs: number; readonly maxMs: number };
  readonly random?: () => number;
}

export type XdsClientEvent =
  | { readonly type: 'connected' }
  | { readonly type: 'disconnected'; readonly code: number; readonly details: string; readonly retryInMs: number }
  | { readonly type: 'accepted'; readonly typeUrl: string; readonly version: string; readonly count: number }
  | { readonly type: 'rejected'; readonly typeUrl: string; readonly version: string; readonly message: string };

/** The order in which Envoy wants types applied, and in which they are (re)subscribed. */
const TYPES = [TYPE_URLS.cluster, TYPE_URLS.clusterLoadAssignment, TYPE_URLS.listener, TYPE_URLS.routeConfiguration, TYPE_URLS.secret];
const WILDCARD = new Set<string>([TYPE_URLS.cluster, TYPE_URLS.listener]);

interface TypeState {
  /** Names subscribed (named types). */
  names: string[];
  /** The last accepted version and resources. */
  version: string;
  resources: Resources;
  /** The last nonce received on the current stream. */
  nonce: string;
  /** Subscribed on the current stream. */
  requested: boolean;
}

type Call = grpc.ClientDuplexStream<DiscoveryRequest, DiscoveryResponse>;

export class XdsClient {
  readonly #o: XdsClientOptions;
  readonly #types = new Map<string, TypeState>();
  #client: grpc.Client | undefined;
  #call: Call | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #connected = false;

  constructor(options: XdsClientOptions) {
    this.#o = options;
    for (const t of TYPES) this.#types.set(t, { names: [], version: '', resources: new Map(), nonce: '', requested: false });
  }

  /** Whether a stream is open now. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The resources accepted last, per type URL. */
  resources(typeUrl: string): Resources {
    return this.#types.get(typeUrl)?.resources ?? new Map();
  }

  /** The version accepted last, per type URL ('' before the first). */
  version(typeUrl: string): string {
    return this.#types.get(typeUrl)?.version ?? '';
  }

  start(): void {
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#teardown();
  }

  #connect(): void {
    if (this.#stopped) return;
    let creds: grpc.ChannelCredentials;
    try {
      const { certChainPem, keyPem } = this.#o.credentials();
      creds = grpc.credentials.createSsl(Buffer.from(this.#o.controlPlaneCaPem), Buffer.from(keyPem), Buffer.from(certChainPem));
    } catch (e) {
      this.#retry(grpc.status.UNAUTHENTICATED, `no usable credentials: ${(e as Error).message}`);
      return;
    }
    const name = this.#o.serverName ?? CONTROL_PLANE_NAME;
    const Client = adsClientConstructor();
    const client = new Client(this.#o.address, creds, {
      'grpc.ssl_target_name_override': name,
      'grpc.default_authority': name,
      'grpc.keepalive_time_ms': 30_000,
      'grpc.keepalive_timeout_ms': 10_000,
      // A fresh connection per attempt, so that renewed credentials are used.
      'grpc.use_local_subchannel_pool': 1,
    });
    const call = (client as unknown as { StreamAggregatedResources(): Call }).StreamAggregatedResources();
    this.#client = client;
    this.#call = call;
    let ended = false;
    const end = (code: number, details: string) => {
      if (ended || this.#call !== call) return;
      ended = true;
      this.#teardown();
      this.#retry(code, details);
    };
    call.on('data', (r: DiscoveryResponse) => {
      if (this.#call !== call) return;
      if (!this.#connected) {
        this.#connected = true;
        this.#failures = 0;
        this.#o.onEvent?.({ type: 'connected' });
      }
      this.#onResponse(r);
    });
    call.on('error', (e: grpc.ServiceError) => end(e.code, e.details));
    call.on('status', (s: grpc.StatusObject) => end(s.code, s.details));
    call.on('end', () => end(grpc.status.UNAVAILABLE, 'the control plane ended the stream'));
    let first = true;
    for (const t of TYPES) {
      const st = this.#types.get(t)!;
      st.nonce = '';
      st.requested = false;
      if (WILDCARD.has(t) || st.names.length > 0) {
        this.#send(t, st, first);
        first = false;
      }
    }
  }

  #teardown(): void {
    const call = this.#call;
    const client = this.#client;
    this.#call = undefined;
    this.#client = undefined;
    this.#connected = false;
    try {
      call?.cancel();
    } catch {
      // already gone
    }
    client?.close();
  }

  #retry(code: number, details: string): void {
    if (this.#stopped) return;
    const { initialMs, maxMs } = this.#o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const cap = Math.min(maxMs, initialMs * 2 ** Math.min(this.#failures, 16));
    this.#failures++;
    const retryInMs = Math.max(initialMs / 2, Math.floor((this.#o.random ?? Math.random)() * cap));
    this.#o.onEvent?.({ type: 'disconnected', code, details, retryInMs });
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#connect(), retryInMs);
    this.#timer.unref();
  }

  #send(typeUrl: string, st: TypeState, withNode: boolean, error?: string): void {
    const call = this.#call;
    if (!call) return;
    const msg: DiscoveryRequest = { typeUrl, versionInfo: st.version, resourceNames: WILDCARD.has(typeUrl) ? [] : st.names, responseNonce: st.nonce };
    if (error !== undefined) msg.errorDetail = { code: grpc.status.INVALID_ARGUMENT, message: error };
    if (withNode) {
      const { id, cluster, metadata } = this.#o.node;
      msg.node = { id, cluster, ...(metadata ? { metadata: jsonToStruct(metadata) } : {}) };
    }
    st.requested = true;
    call.write(msg);
  }

  #onResponse(r: DiscoveryResponse): void {
    const st = this.#types.get(r.typeUrl);
    if (!st) return; // a type keymesh's proxy does not use
    st.nonce = r.nonce;
    let resources: Map<string, Record<string, unknown>>;
    let problem: string | undefined;
    try {
      resources = new Map();
      for (const any of r.resources ?? []) {
        if (any.type_url !== r.typeUrl) throw new Error(`a resource of type ${any.type_url} in a ${r.typeUrl} response`);
        const res = decodeResource(any.type_url, any.value) as Record<string, unknown>;
        const name = String(res.name ?? res.clusterName ?? '');
        if (!name) throw new Error(`a ${shortType(r.typeUrl)} resource without a name`);
        if (resources.has(name)) throw new Error(`${shortType(r.typeUrl)} ${name} appears twice`);
        resources.set(name, res);
      }
      problem = this.#o.accept(r.typeUrl, resources, r.versionInfo);
    } catch (e) {
      resources = new Map();
      problem = `keymesh proxy could not apply ${shortType(r.typeUrl)} version ${r.versionInfo}: ${(e as Error).message}`;
    }
    if (problem !== undefined) {
      this.#o.onEvent?.({ type: 'rejected', typeUrl: r.typeUrl, version: r.versionInfo, message: problem });
      this.#send(r.typeUrl, st, false, problem);
      return;
    }
    st.version = r.versionInfo;
    st.resources = resources;
    this.#o.onEvent?.({ type: 'accepted', typeUrl: r.typeUrl, version: r.versionInfo, count: resources.size });
    this.#send(r.typeUrl, st, false);
    this.#follow();
  }

  /** Re-subscribes the named types whose names changed with what was accepted. */
  #follow(): void {
    const refs = resourceReferences(this.resources(TYPE_URLS.cluster), this.resources(TYPE_URLS.listener));
    const wanted: [string, string[]][] = [
      [TYPE_URLS.clusterLoadAssignment, refs.clusterLoadAssignments],
      [TYPE_URLS.routeConfiguration, refs.routeConfigurations],
      [TYPE_URLS.secret, refs.secrets],
    ];
    for (const [typeUrl, names] of wanted) {
      const st = this.#types.get(typeUrl)!;
      if (st.names.join('\n') === names.join('\n') && (st.requested || names.length === 0)) continue;
      st.names = names;
      this.#send(typeUrl, st, false);
    }
  }
}

function shortType(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('.') + 1);
}
