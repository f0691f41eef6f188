// One mesh workload for integration tests, standing in for a proxy until the xDS/SDS server exists: an
// SvidSource that gets and renews its SVID from keymesh's CertificateAuthority in process, a trust bundle
// delivered through `authority.watch`, and a real mutual-TLS server and client (node:tls, loopback only)
// whose contexts follow both. Every connection is a fresh full handshake with one small request/response.
import type { AddressInfo, Socket } from 'node:net';
import tls from 'node:tls';
import { systemClock } from '../../src/base/clock.ts';
import type { CertificateAuthority } from '../../src/ca/authority.ts';
import type { TrustBundle } from '../../src/ca/bundles.ts';
import type { CaEvent } from '../../src/ca/events.ts';
import type { Svid as IssuedSvid } from '../../src/ca/svid-issuer.ts';
import type { SvidResponse } from '../../src/identity/svid.ts';
import type { Svid } from '../../src/identity/svid.ts';
import { SvidSource, type IdentityLog, type IdentityTransport } from '../../src/identity/svid-source.ts';

const MIN_VERSION = 'TLSv1.2';
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** One SVID the CA issued to this workload, as the CA reported it. */
export interface Issuance {
  readonly at: number;
  readonly kind: 'bootstrap' | 'renewal';
  readonly caId: string;
  readonly serial: string;
  readonly certChainPem: string;
  readonly notBefore: number;
  readonly notAfter: number;
}

export interface WorkloadEvent {
  readonly at: number;
  readonly message: string;
}

export interface HandshakeResult {
  readonly protocol: string | null;
  readonly reused: boolean;
  /** The SPIFFE ID the server's certificate carries. */
  readonly serverId: string;
}

export interface WorkloadOptions {
  readonly authority: CertificateAuthority;
  readonly trustDomain: string;
  /** The virtual node's name. */
  readonly name: string;
  readonly spiffeId: string;
  /** Its service discovery hostname: the client's SNI, checked against the server certificate's DNS SAN. */
  readonly dnsName: string;
  readonly joinToken: string;
}

/** The single SPIFFE ID (URI SAN) of a certificate in Node's `subjectaltname` form ("DNS:a, URI:spiffe://td/x"); undefined unless exactly one. */
export function spiffeIdIn(subjectAltName: string | undefined): string | undefined {
  const ids = (subjectAltName ?? '').split(', ').filter((n) => n.startsWith('URI:spiffe://')).map((n) => n.slice('URI:'.length));
  return ids.length === 1 ? ids[0] : undefined;
}

/**
 * One mTLS request: connect to 127.0.0.1:port with `secureContext` (our certificate, key and trust bundle),
 * check the server's DNS SAN against `servername` and its SPIFFE ID against `expectServer`, say hello as
 * `clientId` and expect the server's greeting back. Rejects on any handshake, identity or protocol problem.
 */
export function mtlsRequest(o: { port: number; servername: string; secureContext: tls.SecureContext; expectServer: string; clientId: string; timeoutMs?: number }): Promise<HandshakeResult> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let reply = '';
    let serverId = '';
    const socket = tls.connect({
      host: '127.0.0.1',
      port: o.port,
      servername: o.servername,
      secureContext: o.secureContext,
      rejectUnauthorized: true,
      checkServerIdentity: (host, cert) => {
        const dnsProblem = tls.checkServerIdentity(host, cert);
        if (dnsProblem) return dnsProblem;
        const id = spiffeIdIn(cert.subjectaltname);
        return id === o.expectServer ? undefined : new Error(`server SPIFFE ID is ${id ?? 'missing'}, expected ${o.expectServer}`);
      },
    });
    const timer = setTimeout(() => finish(new Error(`no reply within ${o.timeoutMs ?? HANDSHAKE_TIMEOUT_MS} ms`)), o.timeoutMs ?? HANDSHAKE_TIMEOUT_MS);
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) {
        socket.destroy();
        reject(error);
      } else {
        resolve({ protocol: socket.getProtocol(), reused: socket.isSessionReused(), serverId });
      }
    };
    socket.setEncoding('utf8');
    socket.on('secureConnect', () => {
      if (!socket.authorized) return finish(new Error(`server not authorized: ${String(socket.authorizationError)}`));
      serverId = spiffeIdIn(socket.getPeerX509Certificate()?.subjectAltName) ?? '';
      socket.write(`hello from ${o.clientId}\n`);
    });
    socket.on('data', (chunk: string) => {
      reply += chunk;
    });
    // The server ends the connection after its greeting; the socket then closes on its own.
    socket.on('end', () => {
      if (reply === '') return finish(new Error('connection closed before the reply'));
      const expected = `hello ${o.clientId}, this is ${o.expectServer}\n`;
      finish(reply === expected ? undefined : new Error(`unexpected reply ${JSON.stringify(reply)} (expected ${JSON.stringify(expected)})`));
    });
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish(new Error('connection closed before the reply')));
  });
}

/** The CA in process, as the HTTP endpoints will call it: bootstrap redeems the join token; renewal authenticates with the current SVID. */
class AuthorityTransport implements IdentityTransport {
  readonly issued: Issuance[] = [];
  readonly #authority: CertificateAuthority;

  constructor(authority: CertificateAuthority) {
    this.#authority = authority;
  }

  async bootstrap(csrPem: string, joinToken: string): Promise<SvidResponse> {
    return this.#record('bootstrap', await this.#authority.redeemJoinToken(joinToken, csrPem));
  }

  async renew(csrPem: string, current: { keyPem: string; certChainPem: string }): Promise<SvidResponse> {
    const identity = await this.#authority.identityFromPeerCertificate(current.certChainPem);
    return this.#record('renewal', await this.#authority.renew(identity, csrPem));
  }

  #record(kind: Issuance['kind'], svid: IssuedSvid): SvidResponse {
    this.issued.push({ at: Date.now(), kind, caId: svid.caId, serial: svid.serial, certChainPem: svid.certChainPem, notBefore: svid.notBefore, notAfter: svid.notAfter });
    return svid;
  }
}

class Log implements IdentityLog {
  readonly lines: { level: 'info' | 'warn'; at: number; msg: string }[] = [];
  info(msg: string): void {
    this.lines.push({ level: 'info', at: Date.now(), msg });
  }
  warn(msg: string): void {
    this.lines.push({ level: 'warn', at: Date.now(), msg });
  }
}

export class TlsWorkload {
  readonly name: string;
  readonly spiffeId: string;
  readonly dnsName: string;
  readonly trustDomain: string;
  readonly source: SvidSource;
  /** Problems this workload saw: failed or refused inbound handshakes, bad requests, lost identity, failed bundle fetches. */
  readonly problems: WorkloadEvent[] = [];
  /** Each trust bundle installed in the TLS contexts (CA ids), in order. */
  readonly bundleHistory: { at: number; caIds: readonly string[] }[] = [];
  readonly #authority: CertificateAuthority;
  readonly #transport: AuthorityTransport;
  readonly #log = new Log();
  readonly #acceptedClients = new Set<string>();
  readonly #sockets = new Set<Socket>();
  #server: tls.Server | undefined;
  #port = 0;
  #svid: Svid | undefined;
  #bundle: TrustBundle | undefined;
  #clientContext: tls.SecureContext | undefined;
  /** The same, but offering at most TLS 1.2. */
  #clientContextTls12: tls.SecureContext | undefined;
  #held: ReadonlySet<string> = new Set();
  #unwatch: (() => void) | undefined;
  #paused = false;
  #refreshWanted = false;
  #refreshes: Promise<void> = Promise.resolve();
  #closed = false;

  private constructor(o: WorkloadOptions) {
    this.name = o.name;
    this.spiffeId = o.spiffeId;
    this.dnsName = o.dnsName;
    this.trustDomain = o.trustDomain;
    this.#authority = o.authority;
    this.#transport = new AuthorityTransport(o.authority);
    this.source = new SvidSource({
      transport: this.#transport,
      clock: systemClock,
      log: this.#log,
      joinToken: o.joinToken,
      expectedSpiffeId: o.spiffeId,
      onUpdate: (svid) => this.#onSvid(svid),
    });
  }

  /** Subscribes to bundle changes, fetches the bundle, bootstraps the SVID and starts listening on a loopback port. */
  static async start(o: WorkloadOptions): Promise<TlsWorkload> {
    const w = new TlsWorkload(o);
    try {
      await w.#start();
    } catch (e) {
      await w.close();
      throw e;
    }
    return w;
  }

  async #start(): Promise<void> {
    this.#unwatch = this.#authority.watch((e) => this.#onCaEvent(e)); // before the first fetch: no change is missed
    this.#requestRefresh();
    await this.#refreshes;
    await this.source.start();
    await this.source.ready();
    const server = tls.createServer({ ...this.#contextOptions(), requestCert: true, rejectUnauthorized: true, handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, (socket) => this.#serve(socket));
    // A client certificate that fails verification makes Node destroy the connection ("socket hang up");
    // the verification error itself is on the socket.
    server.on('tlsClientError', (e, socket) => {
      const why = socket.authorizationError === null || socket.authorizationError === undefined ? '' : ` (client certificate: ${String(socket.authorizationError)})`;
      this.#problem(`inbound handshake failed: ${e.message}${why}`);
    });
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.address() as AddressInfo).port;
  }

  get port(): number {
    return this.#port;
  }

  /** The SPIFFE IDs allowed to connect to this workload's server (its authorization policy). */
  acceptClients(ids: readonly string[]): void {
    for (const id of ids) this.#acceptedClients.add(id);
  }

  /** Every SVID the CA issued to this workload, in order. */
  get issued(): readonly Issuance[] {
    return this.#transport.issued;
  }

  /** The SVID in use, if any. */
  get svid(): Svid | undefined {
    return this.source.current();
  }

  /** The CA that signed the SVID in use. */
  currentCaId(): string | undefined {
    const svid = this.source.current();
    return svid && this.#transport.issued.find((i) => i.certChainPem === svid.certChainPem)?.caId;
  }

  /** The trust bundle installed in the TLS contexts. */
  get bundle(): TrustBundle | undefined {
    return this.#bundle;
  }

  /** Whether the installed bundle holds CA `caId` (what an xDS ACK would tell the CA). */
  holds(caId: string): boolean {
    return this.#held.has(caId);
  }

  heldCaIds(): string[] {
    return [...this.#held];
  }

  /** The SvidSource's warnings (renewal failures, expiry warnings, lost identity). */
  identityWarnings(): string[] {
    return this.#log.lines.filter((l) => l.level === 'warn').map((l) => l.msg);
  }

  /** Bundle changes are noted but not fetched until resume: a proxy that has not ACKed yet. */
  pauseBundleUpdates(): void {
    this.#paused = true;
  }

  async resumeBundleUpdates(): Promise<void> {
    this.#paused = false;
    if (this.#refreshWanted) {
      this.#refreshWanted = false;
      this.#requestRefresh();
    }
    await this.#refreshes;
  }

  /** One fresh mTLS connection to `peer` with this workload's current SVID and bundle; TLS 1.3 unless `tls12`. */
  async request(peer: TlsWorkload, options: { tls12?: boolean; timeoutMs?: number } = {}): Promise<HandshakeResult> {
    const { tls12 = false, timeoutMs = HANDSHAKE_TIMEOUT_MS } = options;
    const secureContext = tls12 ? this.#clientContextTls12 : this.#clientContext;
    if (!secureContext) throw new Error(`${this.name} has no identity or no trust bundle`);
    return mtlsRequest({ port: peer.port, servername: peer.dnsName, secureContext, expectServer: peer.spiffeId, clientId: this.spiffeId, timeoutMs });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.source.stop();
    this.#unwatch?.();
    await this.#refreshes;
    const server = this.#server;
    if (server) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of this.#sockets) s.destroy();
      await closed;
    }
  }

  #onCaEvent(e: CaEvent): void {
    if (e.type === 'bundle' && e.trustDomain === this.trustDomain) this.#requestRefresh();
  }

  /** Refreshes run one after another, so an older fetch never overwrites a newer bundle. */
  #requestRefresh(): void {
    if (this.#closed) return;
    if (this.#paused) {
      this.#refreshWanted = true;
      return;
    }
    this.#refreshes = this.#refreshes
      .then(() => this.#refreshBundle())
      .catch((e: unknown) => this.#problem(`bundle refresh failed: ${e instanceof Error ? e.message : String(e)}`));
  }

  async #refreshBundle(): Promise<void> {
    const bundle = await this.#authority.trustBundle(this.trustDomain);
    if (this.#closed) return;
    this.#bundle = bundle;
    this.#install();
    // Only once the contexts use it does this workload "hold" the bundle.
    this.#held = new Set(bundle.caIds);
    this.bundleHistory.push({ at: Date.now(), caIds: [...bundle.caIds] });
  }

  #onSvid(svid: Svid | undefined): void {
    if (!svid) this.#problem('identity lost: the SVID expired without renewal');
    this.#svid = svid;
    this.#install();
  }

  #contextOptions(): tls.SecureContextOptions {
    const svid = this.#svid;
    const bundle = this.#bundle;
    // Without an SVID (fail closed) the server has no certificate and every handshake fails.
    return { minVersion: MIN_VERSION, ...(bundle?.pem ? { ca: bundle.pem } : {}), ...(svid ? { key: svid.keyPem, cert: svid.certChainPem } : {}) };
  }

  /** Swaps the server's and the client's contexts for ones with the current SVID and bundle. */
  #install(): void {
    const ready = this.#svid !== undefined && this.#bundle !== undefined && this.#bundle.pem !== '';
    const options = this.#contextOptions();
    this.#clientContext = ready ? tls.createSecureContext(options) : undefined;
    this.#clientContextTls12 = ready ? tls.createSecureContext({ ...options, maxVersion: 'TLSv1.2' }) : undefined;
    this.#server?.setSecureContext(options);
  }

  #serve(socket: tls.TLSSocket): void {
    const client = spiffeIdIn(socket.getPeerX509Certificate()?.subjectAltName);
    if (!socket.authorized || client === undefined || !this.#acceptedClients.has(client)) {
      this.#problem(`refused client ${client ?? '(no SPIFFE ID)'}: ${socket.authorized ? 'not an accepted peer' : String(socket.authorizationError)}`);
      socket.destroy();
      return;
    }
    let request = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      request += chunk;
      if (!request.endsWith('\n')) return;
      if (request !== `hello from ${client}\n`) {
        this.#problem(`bad request from ${client}: ${JSON.stringify(request)}`);
        socket.destroy();
        return;
      }
      socket.end(`hello ${client}, this is ${this.spiffeId}\n`);
    });
    socket.on('error', (e) => this.#problem(`connection from ${client} failed: ${e.message}`));
  }

  #problem(message: string): void {
    this.problems.push({ at: Date.now(), message });
  }
}
