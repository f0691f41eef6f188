// One running listener: accepts connections, runs the listener filters (tls_inspector / http_inspector on the
// first bytes, with Envoy's 15 s timeout), picks the filter chain, terminates TLS when the chain has it (with
// Envoy's peer checks and ssl.* counters), and hands the connection to the chain's network filter.
//
// Containment (whatever arrives on the port, the connection ends and a counter of `listener.<address>_<port>.`
// says why):
// - Listener filters read at most MAX_INSPECT_BYTES (one TLS record, 16 KiB) and get `filtersTimeoutMs` (15 s,
//   Envoy's listener_filters_timeout): a client that sends one byte and stalls is closed then
//   (`downstream_pre_cx_timeout`; `downstream_pre_cx_active` counts the sockets being inspected). A TLS record
//   longer than that is not a ClientHello the inspector will read: closed (`tls_inspector.client_hello_too_large`,
//   Envoy's tls_inspector counter, kept under the listener here). A client that goes away while inspected:
//   `downstream_listener_filter_remote_close`. No chain for what was seen: `no_filter_chain_match`.
// - TLS must complete within `tlsHandshakeTimeoutMs` of starting (TLS_HANDSHAKE_TIMEOUT_MS, 10 s): a client that
//   never sends its ClientHello or stops mid-handshake is closed (`downstream_cx_transport_socket_connect_timeout`,
//   the counter of Envoy's transport_socket_connect_timeout). Envoy sets no such timeout by default (its HTTP
//   connection manager's 1 h idle timeout ends such connections); node's own default is 120 s. A handshake takes
//   a few round trips, so 10 s is generous for any client and bounds how long a stalled one holds a socket.
// - A handshake that fails (bytes that are not TLS, an HTTP request on a TLS port, a protocol version refused):
//   `ssl.connection_error`, or `ssl.fail_verify_*` for a refused client certificate, as Envoy counts them.
// - `downstream_cx_destroy` counts every connection that ended, `downstream_cx_active` the open ones.
// What happens after the network filter took the connection (HTTP limits and timeouts, the TCP proxy's idle
// timeout) is the filter's: http/http1-session.ts, tcp/tcp-proxy.ts.
//
// Configuration changes replace the chains for NEW connections; connections already open keep the chain and
// TLS material they started with (Envoy drains old chains the same way). `close()` stops accepting and waits
// for open connections up to a drain time, then ends them.
import { createServer, type Server, type Socket } from 'node:net';
import { Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { StatsScope } from '../admin/stats.ts';
import { checkPeer, type PeerProblem, type TlsMaterial } from '../tls/material.ts';
import type { TlsProvider } from '../tls/provider.ts';
import type { FilterChainSpec, ListenerSpec } from './compile.ts';
import { inspect, MAX_INSPECT_BYTES, type Inspection } from './inspect.ts';
import { needsInspection, selectChain } from './select-chain.ts';
import { selectHttpAlpn, type HttpCodec } from '../mux/alpn.ts';

/** Envoy's default listener_filters_timeout. */
export const LISTENER_FILTERS_TIMEOUT_MS = 15_000;

/** Time a TLS handshake may take, from its start (after the listener filters) to its end; see the file comment. */
export const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

export interface DownstreamConnection {
  /** Plaintext socket, or the TLS socket once the handshake and peer checks passed. */
  readonly socket: Duplex;
  readonly raw: Socket;
  readonly chain: FilterChainSpec;
  readonly tls: { readonly version: string; readonly cipher: string; readonly peerSpiffeId: string | undefined; readonly peerCertificate: boolean } | undefined;
  /** What the first bytes were, when inspected (the HTTP codec uses it to skip its own detection). */
  readonly inspection: Inspection | undefined;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  /**
   * How the network filter winds the connection down when its filter chain is changed or removed (Envoy
   * drains connections of old chains): e.g. an HTTP session closes once its current exchange is done.
   */
  onDrain(drain: () => void): void;
  /**
   * TLS connections: calls `changed` whenever the chain's TLS material (certificate, trust, CRLs) is no longer what
   * this connection's handshake used (it may call it more than once); returns the unsubscribe. A long-lived
   * multiplexed connection drains then, so rotated and revoked material takes effect without new connections.
   */
  onTlsMaterialChange?(changed: () => void): () => void;
}

/** The network filter of a chain (http_connection_manager or tcp_proxy). */
export type ChainHandler = (conn: DownstreamConnection) => void;

export interface ListenerDeps {
  readonly tls: TlsProvider;
  readonly handlerFor: (chain: FilterChainSpec) => ChainHandler;
  /** `listener.<address>_<port>.` */
  readonly stats: StatsScope;
  readonly log?: (message: string, fields?: Record<string, unknown>) => void;
  /** Listener filter timeout (LISTENER_FILTERS_TIMEOUT_MS by default). */
  readonly filtersTimeoutMs?: number;
  /** TLS handshake timeout (TLS_HANDSHAKE_TIMEOUT_MS by default). */
  readonly tlsHandshakeTimeoutMs?: number;
}

interface ListenerCounters {
  readonly cxTotal: ReturnType<StatsScope['counter']>;
  readonly cxActive: ReturnType<StatsScope['gauge']>;
  readonly cxDestroy: ReturnType<StatsScope['counter']>;
  readonly noChain: ReturnType<StatsScope['counter']>;
  readonly filtersTimeout: ReturnType<StatsScope['counter']>;
  readonly preCxActive: ReturnType<StatsScope['gauge']>;
  readonly filterRemoteClose: ReturnType<StatsScope['counter']>;
  readonly helloTooLarge: ReturnType<StatsScope['counter']>;
  readonly handshakeTimeout: ReturnType<StatsScope['counter']>;
  readonly plaintext: ReturnType<StatsScope['counter']>;
  readonly plaintextActive: ReturnType<StatsScope['gauge']>;
}

/** `listener.<a>.ssl.*`: made only for listeners with a TLS chain, as Envoy has them only with a TLS context. */
interface SslCounters {
  readonly handshake: ReturnType<StatsScope['counter']>;
  readonly noCertificate: ReturnType<StatsScope['counter']>;
  readonly connectionError: ReturnType<StatsScope['counter']>;
  readonly sslProblem: Record<PeerProblem, ReturnType<StatsScope['counter']>>;
}

function sslCounters(stats: StatsScope): SslCounters {
  const ssl = stats.scope('ssl');
  return {
    handshake: ssl.counter('handshake'),
    noCertificate: ssl.counter('no_certificate'),
    connectionError: ssl.counter('connection_error'),
    sslProblem: {
      fail_verify_no_cert: ssl.counter('fail_verify_no_cert'),
      fail_verify_error: ssl.counter('fail_verify_error'),
      fail_verify_san: ssl.counter('fail_verify_san'),
    },
  };
}

function counters(stats: StatsScope): ListenerCounters {
  return {
    cxTotal: stats.counter('downstream_cx_total'),
    cxActive: stats.gauge('downstream_cx_active'),
    cxDestroy: stats.counter('downstream_cx_destroy'),
    noChain: stats.counter('no_filter_chain_match'),
    filtersTimeout: stats.counter('downstream_pre_cx_timeout'),
    preCxActive: stats.gauge('downstream_pre_cx_active'),
    filterRemoteClose: stats.counter('downstream_listener_filter_remote_close'),
    helloTooLarge: stats.counter('tls_inspector.client_hello_too_large'),
    handshakeTimeout: stats.counter('downstream_cx_transport_socket_connect_timeout'),
    // keymesh's own: connections served without TLS, the evidence of who still speaks plaintext.
    plaintext: stats.counter('keymesh.plaintext_cx_total'),
    // ... and those still open: during a migration to STRICT, what must reach 0 first.
    plaintextActive: stats.gauge('keymesh.plaintext_cx_active'),
  };
}

/** OpenSSL's reasons for a refused client certificate, as node reports them on the server side. */
function handshakeProblem(e: Error & { code?: string }): PeerProblem | undefined {
  const code = e.code ?? '';
  const text = `${code} ${e.message}`;
  if (/PEER_DID_NOT_RETURN_A_CERTIFICATE|CERTIFICATE_REQUIRED/i.test(text)) return 'fail_verify_no_cert';
  if (/CERTIFICATE_VERIFY_FAILED|certificate verify failed|UNKNOWN_CA|unable to get (local )?issuer|CERT_HAS_EXPIRED|self.signed/i.test(text)) return 'fail_verify_error';
  return undefined;
}

export class RunningListener {
  #spec: ListenerSpec;
  readonly #deps: ListenerDeps;
  readonly #server: Server;
  readonly #open = new Set<Socket>();
  readonly #c: ListenerCounters;
  #sslStats: SslCounters | undefined;
  readonly #tlsServers = new WeakMap<FilterChainSpec, { key: string; server: TlsServer }>();
  /** Drain callbacks of open connections, by the chain they were accepted on. */
  readonly #drains = new Map<FilterChainSpec, Set<() => void>>();
  /** Connections handed to a chain's tls.Server, until their handshake is done: what to do with them then. */
  readonly #handshaking = new WeakMap<object, Handshaken>();
  #inspect: boolean;

  constructor(spec: ListenerSpec, deps: ListenerDeps) {
    this.#spec = spec;
    this.#deps = deps;
    this.#c = counters(deps.stats);
    if (spec.filterChains.some((c) => c.tls)) this.#sslStats = sslCounters(deps.stats);
    this.#inspect = needsInspection(spec.filterChains) && spec.listenerFilters.some((f) => f.name !== 'original_dst');
    // allowHalfOpen: a client may half-close after its request and still read the response.
    this.#server = createServer({ noDelay: true, pauseOnConnect: false, allowHalfOpen: true }, (socket) => this.#accept(socket));
  }

  /** The ssl.* counters, made the first time the listener has TLS. */
  get #ssl(): SslCounters {
    return (this.#sslStats ??= sslCounters(this.#deps.stats));
  }

  get spec(): ListenerSpec {
    return this.#spec;
  }

  listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen({ host: this.#spec.address, port: this.#spec.port, ipv6Only: false }, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
  }

  /**
   * New chains for new connections (same address and port). Connections of chains that changed or went away
   * are drained, so a tightened policy (a client certificate now required) applies to every request soon.
   */
  update(spec: ListenerSpec): void {
    if (spec.filterChains.some((c) => c.tls)) void this.#ssl;
    const kept = new Set(spec.filterChains.map(chainKey));
    for (const [chain, drains] of this.#drains) {
      if (kept.has(chainKey(chain))) continue;
      this.#drains.delete(chain);
      for (const drain of drains) drain();
    }
    this.#spec = spec;
    this.#inspect = needsInspection(spec.filterChains) && spec.listenerFilters.some((f) => f.name !== 'original_dst');
  }

  /** Stops accepting; open connections get `drainMs` to finish, then are ended. */
  async close(drainMs = 5000): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    if (this.#open.size > 0) {
      const deadline = setTimeout(() => {
        for (const s of this.#open) s.destroy();
      }, drainMs);
      deadline.unref();
      await closed;
      clearTimeout(deadline);
    } else {
      await closed;
    }
  }

  #accept(socket: Socket): void {
    const c = this.#c;
    c.cxTotal.inc();
    c.cxActive.inc();
    this.#open.add(socket);
    socket.once('close', () => {
      this.#open.delete(socket);
      c.cxActive.dec();
      c.cxDestroy.inc();
    });
    socket.on('error', noop); // the filter reports what it cares about; an RST must not crash the proxy
    if (this.#inspect) this.#runListenerFilters(socket);
    else this.#dispatch(socket, undefined);
  }

  /**
   * tls_inspector / http_inspector on the first bytes: at most MAX_INSPECT_BYTES are read, within the listener
   * filter timeout; then the chain is picked from what they say.
   */
  #runListenerFilters(socket: Socket): void {
    const c = this.#c;
    c.preCxActive.inc();
    let buffered: Buffer = EMPTY;
    const stop = () => {
      clearTimeout(timer);
      c.preCxActive.dec();
      socket.off('data', onData);
      socket.off('end', onGone);
      socket.off('close', onGone);
    };
    const timer = setTimeout(() => {
      stop();
      c.filtersTimeout.inc();
      if (this.#spec.continueOnListenerFiltersTimeout) {
        socket.pause();
        this.#dispatch(socket, undefined, buffered);
      } else {
        socket.destroy();
      }
    }, this.#deps.filtersTimeoutMs ?? LISTENER_FILTERS_TIMEOUT_MS);
    // The client went away (FIN or RST) before the filters could tell what it speaks.
    const onGone = () => {
      stop();
      c.filterRemoteClose.inc();
      socket.destroy();
    };
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      const full = buffered.length >= MAX_INSPECT_BYTES;
      const result = inspect(full ? buffered.subarray(0, MAX_INSPECT_BYTES) : buffered);
      if (result === undefined && !full) return;
      stop();
      socket.pause();
      if (full && result?.kind !== 'tls' && buffered[0] === 0x16 && buffered[1] === 0x03) {
        // A TLS record longer than a record may be (2^14 bytes), or a ClientHello the inspector cannot read
        // in one: Envoy's tls_inspector closes the connection.
        c.helloTooLarge.inc();
        socket.destroy();
        return;
      }
      this.#dispatch(socket, result ?? { kind: 'other' }, buffered);
    };
    socket.on('data', onData);
    socket.once('end', onGone);
    socket.once('close', onGone);
  }

  /** `head`: bytes the listener filters read, to be seen again by TLS or the network filter. */
  #dispatch(socket: Socket, inspection: Inspection | undefined, head?: Buffer): void {
    const facts = {
      destinationPort: socket.localPort ?? this.#spec.port,
      serverName: inspection?.kind === 'tls' ? inspection.serverName : undefined,
      transportProtocol: inspection?.kind === 'tls' ? 'tls' as const : 'raw_buffer' as const,
      applicationProtocols: inspection?.kind === 'tls' ? inspection.alpn : inspection?.kind === 'http' ? [inspection.protocol] : [],
    };
    const chain = selectChain(this.#spec.filterChains, facts);
    if (!chain) {
      this.#c.noChain.inc();
      socket.destroy();
      return;
    }
    const handler = this.#deps.handlerFor(chain);
    const onDrain = (drain: () => void) => {
      let set = this.#drains.get(chain);
      if (!set) this.#drains.set(chain, (set = new Set()));
      set.add(drain);
      socket.once('close', () => set.delete(drain));
    };
    const base = { raw: socket, chain, inspection, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0, localPort: socket.localPort ?? 0, onDrain };
    if (!chain.tls) {
      this.#c.plaintext.inc();
      this.#c.plaintextActive.inc();
      socket.once('close', () => this.#c.plaintextActive.dec());
      if (head && head.length > 0) socket.unshift(head);
      // Flowing again (the listener filters paused it) before the filter runs: resume() only schedules the flow,
      // so the filter's 'data' listener gets every byte, and a filter that pauses the socket (the TCP proxy while
      // its upstream connects) keeps it paused.
      socket.resume();
      handler({ ...base, socket, tls: undefined });
      return;
    }
    // The bytes the listener filters read go back in front; node's TLSSocket takes over the socket's handle and
    // feeds what the socket holds to OpenSSL first, so TLS runs on the native handle (no JS stream in between).
    if (head && head.length > 0) socket.unshift(head);
    this.#terminateTls(socket, chain, (tlsSocket, onTlsMaterialChange, tls) => handler({ ...base, socket: tlsSocket, tls, onTlsMaterialChange }));
  }

  /**
   * TLS through a (never listening) tls.Server per chain and material: node computes the peer verdict
   * (`authorized`) only for sockets of a tls.Server, so connections are handed to one with 'connection'. The
   * server is shared by the chain's connections; what to do with each once its handshake is done waits in
   * #handshaking under the stream it was handed (see transportOf).
   */
  #terminateTls(socket: Socket, chain: FilterChainSpec, then: Handshaken): void {
    const spec = chain.tls!;
    const provided = this.#deps.tls.get(spec);
    if (!provided.ok) {
      // Envoy would not have started the listener; a chain whose material went away refuses the connection.
      this.#ssl.connectionError.inc();
      this.#deps.log?.('TLS material missing for a filter chain', { listener: this.#spec.name, chain: chain.name, missing: provided.missing });
      socket.destroy();
      return;
    }
    let entry = this.#tlsServers.get(chain);
    if (!entry || entry.key !== provided.material.key) {
      entry = { key: provided.material.key, server: this.#tlsServer(chain, provided.material) };
      this.#tlsServers.set(chain, entry);
    }
    this.#handshaking.set(socket, then);
    // Not resumed: TLS reads the handle itself; a flowing socket would hand the bytes put back to nobody.
    entry.server.emit('connection', socket);
  }

  #tlsServer(chain: FilterChainSpec, material: TlsMaterial): TlsServer {
    const spec = chain.tls!;
    const validates = spec.validation?.trust !== undefined;
    // A tls.Server builds its own context from these (it ignores a given secureContext).
    const server = new TlsServer({
      ...(material.chainPem ? { cert: material.chainPem } : {}),
      ...(material.keyPem ? { key: material.keyPem } : {}),
      ...(material.caPem ? { ca: material.caPem } : {}),
      minVersion: material.minVersion,
      maxVersion: material.maxVersion,
      requestCert: validates || spec.requireClientCertificate,
      // A required certificate that is missing fails the handshake in OpenSSL, with the alert Envoy sends
      // (handshake_failure in TLS 1.2, certificate_required in 1.3: seed 003's `curl -k`). The other verdicts
      // are ours (checkPeer) after the handshake; a chain that does not verify is the one node refuses by
      // itself, ending the socket with only a 'socket hang up' (counted below by its authorizationError).
      rejectUnauthorized: spec.requireClientCertificate && material.caPem !== undefined,
      // From the start of the handshake to its end, however the bytes trickle in (node's timer is not reset by
      // handshake traffic); it ends as a tlsClientError ERR_TLS_HANDSHAKE_TIMEOUT.
      handshakeTimeout: this.#deps.tlsHandshakeTimeoutMs ?? TLS_HANDSHAKE_TIMEOUT_MS,
      // An HTTP connection manager also selects keymesh's multiplexed hop when a keymesh proxy offers it.
      ...(chain.filter.kind === 'http'
        ? { ALPNCallback: httpAlpn(spec.alpn, chain.filter.codec) }
        : spec.alpn.length > 0 ? { ALPNProtocols: [...spec.alpn] } : {}),
    });
    server.on('tlsClientError', (e: Error & { code?: string }, tlsSocket: TLSSocket) => {
      if (e.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') {
        this.#c.handshakeTimeout.inc();
      } else {
        const problem = handshakeProblem(e) ?? (tlsSocket.authorizationError ? 'fail_verify_error' : undefined);
        if (problem) this.#ssl.sslProblem[problem].inc();
        else this.#ssl.connectionError.inc();
      }
      tlsSocket.destroy();
    });
    server.on('secureConnection', (tlsSocket: TLSSocket) => {
      const transport = transportOf(tlsSocket);
      const then = transport === undefined ? undefined : this.#handshaking.get(transport);
      if (transport !== undefined) this.#handshaking.delete(transport);
      const peer = tlsSocket.getPeerX509Certificate();
      const problem = checkPeer(spec, material, peer, tlsSocket.authorized, spec.requireClientCertificate);
      if (problem) {
        this.#ssl.sslProblem[problem].inc();
        tlsSocket.destroy();
        return;
      }
      if (!then) {
        // Not a connection this listener handed over (cannot happen unless node changes how it links them).
        this.#ssl.connectionError.inc();
        this.#deps.log?.('TLS connection without its downstream connection', { listener: this.#spec.name, chain: chain.name });
        tlsSocket.destroy();
        return;
      }
      this.#ssl.handshake.inc();
      if (!peer) this.#ssl.noCertificate.inc();
      tlsSocket.on('error', noop);
      const cipher = tlsSocket.getCipher();
      const spiffe = /URI:(spiffe:\/\/[^,\s]+)/.exec(peer?.subjectAltName ?? '')?.[1];
      const provider = this.#deps.tls;
      const onTlsMaterialChange = (changed: () => void) => provider.onChange(() => {
        const now = provider.get(spec);
        if (!now.ok || now.material.key !== material.key) changed();
      });
      then(tlsSocket, onTlsMaterialChange, { version: tlsSocket.getProtocol() ?? '', cipher: cipher?.name ?? '', peerSpiffeId: spiffe, peerCertificate: peer !== undefined });
    });
    return server;
  }
}

function httpAlpn(configured: readonly string[], codec: HttpCodec): (arg: { protocols: string[] }) => string | undefined {
  return ({ protocols }) => selectHttpAlpn(protocols, configured, codec);
}

type Handshaken = (s: TLSSocket, onTlsMaterialChange: NonNullable<DownstreamConnection['onTlsMaterialChange']>, tls: NonNullable<DownstreamConnection['tls']>) => void;

const EMPTY = Buffer.alloc(0);

function noop(): void {}

/**
 * The stream a tls.Server's TLS socket was made over (the one emitted with 'connection'): node keeps a net.Socket
 * as `_parent` (and wraps any other stream in a JSStreamSocket it keeps on the TLS handle). Not public API, but
 * stable across node's releases; the listener tests run inspected and direct connections concurrently.
 */
function transportOf(s: TLSSocket): object | undefined {
  const t = s as unknown as { _parent?: object | null; ssl?: { _parentWrap?: { stream?: object } } | null };
  return t._parent ?? t.ssl?._parentWrap?.stream ?? undefined;
}

const chainKeys = new WeakMap<FilterChainSpec, string>();

/** A chain's identity across configuration versions: its whole spec. */
function chainKey(chain: FilterChainSpec): string {
  let key = chainKeys.get(chain);
  if (key === undefined) {
    key = JSON.stringify(chain, (_k, v: unknown) => (v instanceof RegExp ? v.source : v));
    chainKeys.set(chain, key);
  }
  return key;
}
