// What the HTTP forwarding code needs of a cluster: a connection to one of its hosts (pooled or new, plain or
// TLS), given back when the exchange is over, and the outcome of each request (for outlier detection and
// stats). The cluster runtime (cluster-runtime.ts) implements it over the host set and connection pools.
import type { ByteStream } from './byte-stream.ts';
import type { Counter, Histogram } from '../admin/stats.ts';

export interface UpstreamHost {
  readonly address: string;
  readonly port: number;
  /** The DNS name it was resolved from (strict/logical DNS clusters), for auto_host_rewrite. */
  readonly hostname: string | undefined;
}

export interface UpstreamConnection {
  readonly socket: ByteStream;
  readonly host: UpstreamHost;
  /** Taken from the pool (it may have been closed by the server meanwhile: a reset before the response is retried). */
  readonly reused: boolean;
}

export type UpstreamFailure = 'no-healthy-upstream' | 'overflow' | 'connect-failure' | 'connect-timeout' | 'tls-failure';

export class UpstreamConnectError extends Error {
  readonly reason: UpstreamFailure;
  constructor(reason: UpstreamFailure, message: string) {
    super(message);
    this.reason = reason;
  }
}

/** `cluster.<name>.` request stats, as Envoy names them. */
export interface ClusterRequestStats {
  readonly rqTotal: Counter;
  readonly rqTimeout: Counter;
  readonly rqRetry: Counter;
  readonly rqRetrySuccess: Counter;
  readonly rqTime: Histogram;
  readonly rqPendingOverflow: Counter;
  /** upstream_rq_<code> and upstream_rq_<n>xx. */
  status(code: number): void;
}

export interface ClusterHandle {
  readonly name: string;
  readonly stats: ClusterRequestStats;
  /** Whether requests go out as HTTP/2 (http2/grpc listeners); the HTTP/1 forwarder refuses those clusters. */
  readonly http2: boolean;
  /**
   * A connection ready for a request; rejects with UpstreamConnectError. `alpn` is offered on TLS (HTTP/2
   * sessions ask for h2); a pooled connection is only handed out when no ALPN is asked for (HTTP/1.1).
   */
  connect(options?: { readonly alpn?: readonly string[]; readonly pooled?: boolean; readonly host?: UpstreamHost }): Promise<UpstreamConnection>;
  /**
   * The load balancer's choice for the next request, synchronously, once the cluster's hosts are known
   * (undefined before that, or when none is healthy: connect() then waits or says why). An HTTP/2 pool uses it
   * to balance each request, as Envoy does, rather than each connection; `connect({ host })` opens to it.
   */
  pick?(): UpstreamHost | undefined;
  /** Synchronously, a pooled HTTP/1.1 connection to the next host when one is idle (the fast path). */
  takeIdle?(): UpstreamConnection | undefined;
  /** The exchange is over: back to the pool when `reusable`, else closed. */
  release(conn: UpstreamConnection, reusable: boolean): void;
  /** For outlier detection: the response status, or a locally originated failure. */
  outcome(host: UpstreamHost, status: number | 'connect-failure' | 'reset' | 'timeout'): void;
}
