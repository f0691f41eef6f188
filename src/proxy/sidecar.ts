// keymesh's proxy as a whole: its identity (a key made here, an SVID from the identity endpoint with a join
// token, renewed at half-life), its configuration over ADS (authenticated with that SVID, keeping the last
// good configuration while the control plane is away), the data plane that configuration describes, and an
// Envoy-compatible admin interface. `keymesh proxy` and `keymesh gateway` run this; so do tests and the demo.
//
// It opens no listener before it has its identity and a configuration whose listeners can serve (routes and
// certificates present). The SVID is offered to TLS contexts as the certificate secret named by its SPIFFE
// ID (what the translation references for SDS certificates, without an SDS config).
import { systemClock } from '../base/clock.ts';
import { TYPE_URLS } from '../envoy/protos.ts';
import { HttpIdentityTransport } from '../identity/http-transport.ts';
import { SvidSource } from '../identity/svid-source.ts';
import { createAdminServer, type AdminServer } from './admin/admin-server.ts';
import { formatCerts, type TlsContextCerts } from './admin/certs.ts';
import { StatsStore } from './admin/stats.ts';
import { accessLogWriter } from './http/access-log.ts';
import { ProxyRuntime, type ProxyLog } from './runtime.ts';
import { TlsProvider } from './tls/provider.ts';
import { XdsClient } from './xds-client.ts';

export interface SidecarOptions {
  /** `mesh/<mesh>/virtualNode/<name>`, `mesh/<mesh>/virtualGateway/<name>` or an App Mesh ARN: the xDS node id. */
  readonly nodeId: string;
  readonly xdsAddress: string;
  readonly identityEndpoint: string;
  readonly controlPlaneCaPem: string;
  readonly joinToken?: string;
  /** Where the SVID is saved so that a restart needs no new token. */
  readonly stateDir?: string;
  readonly admin: { readonly host: string; readonly port: number };
  /** node.metadata.keymesh (listen_address, ingress_port, egress_port, app_address, tcp_egress_address, upstream_max_requests_per_connection, upstream_tls_max_session_keys, endpoint). */
  readonly placement?: Readonly<Record<string, unknown>>;
  /** Offer keymesh's multiplexed hop on pooled HTTP/1.1 TLS connections to other keymesh proxies (default: yes). */
  readonly mux?: boolean;
  /** File for access logs of listeners that ask for them with path `/dev/stdout` and friends: handled in access-log.ts. */
  readonly log?: ProxyLog;
}

export interface RunningSidecar {
  readonly adminPort: number;
  readonly stats: StatsStore;
  readonly runtime: ProxyRuntime;
  /** Resolves once every listener of the first configuration is serving. */
  readonly ready: Promise<void>;
  close(): Promise<void>;
}

const stderrLog: ProxyLog = (level, message, fields) => {
  process.stderr.write(`keymesh proxy ${level}: ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}\n`);
};

export async function startSidecar(o: SidecarOptions): Promise<RunningSidecar> {
  const log = o.log ?? stderrLog;
  const stats = new StatsStore();
  const source = new SvidSource({
    transport: new HttpIdentityTransport({ endpoint: o.identityEndpoint, caPem: o.controlPlaneCaPem }),
    clock: systemClock,
    log: { info: (m) => log('info', m), warn: (m) => log('warn', m) },
    ...(o.stateDir ? { stateDir: o.stateDir } : {}),
    ...(o.joinToken ? { joinToken: o.joinToken } : {}),
  });
  const tls = new TlsProvider((name) => {
    const svid = source.current();
    return svid && svid.spiffeId === name ? { chainPem: svid.certChainPem, keyPem: svid.keyPem } : undefined;
  });
  source.onUpdate(() => tls.localChanged());
  const logs = accessLogWriter();
  const runtime = new ProxyRuntime({ stats, tls, log, accessLogs: logs, ...(o.mux === false ? { mux: false } : {}) });
  const controlPlane = stats.scope('control_plane');
  const connectedState = controlPlane.gauge('connected_state');
  const rejected = controlPlane.counter('keymesh.rejected_total');
  await source.start();
  const svid = await source.ready();
  log('info', 'identity ready', { spiffeId: svid.spiffeId, notAfter: new Date(svid.notAfter).toISOString() });

  const xds = new XdsClient({
    address: o.xdsAddress,
    controlPlaneCaPem: o.controlPlaneCaPem,
    credentials: () => {
      const current = source.current();
      if (!current) throw new Error('the SVID has expired and could not be renewed');
      return { certChainPem: current.certChainPem, keyPem: current.keyPem };
    },
    node: { id: o.nodeId, cluster: o.nodeId.split('/').at(-1) ?? o.nodeId, ...(o.placement ? { metadata: { keymesh: o.placement } } : {}) },
    accept: runtime.accept,
    onEvent: (e) => {
      if (e.type === 'connected') {
        connectedState.set(1);
        log('info', 'connected to the control plane', { address: o.xdsAddress });
      } else if (e.type === 'disconnected') {
        connectedState.set(0);
        log('warn', 'control plane unreachable; serving the last configuration', { code: e.code, details: e.details, retryInMs: e.retryInMs });
      } else if (e.type === 'rejected') {
        rejected.inc();
        log('warn', 'configuration rejected (NACK)', { type: e.typeUrl, version: e.version, message: e.message });
      }
    },
  });
  xds.start();

  const admin: AdminServer = createAdminServer({
    stats,
    ready: () => (runtime.ready ? 'LIVE' : xds.version(TYPE_URLS.listener) === '' ? 'PRE_INITIALIZING' : 'INITIALIZING'),
    configDump: () => ({ configs: runtime.configDump(), waiting: runtime.waiting() }),
    certs: () => formatCerts(certsInUse(runtime, tls, source.current()), Date.now()),
    clusters: () => runtime.clustersText(),
    onError: (path, e) => log('error', 'admin endpoint failed', { path, error: (e as Error).message }),
  });
  const adminPort = await admin.listen(o.admin.host, o.admin.port);

  const ready = new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (runtime.ready) {
        clearInterval(check);
        resolve();
      }
    }, 20);
    check.unref();
  });

  return {
    adminPort,
    stats,
    runtime,
    ready,
    close: async () => {
      xds.stop();
      await runtime.close();
      await admin.close();
      source.stop();
      tls.close();
      await logs.close();
    },
  };
}

/**
 * What /certs shows: the certificates and trust of every TLS context in use (as resolved now, so a rotated
 * bundle shows as soon as it arrives), then the proxy's SVID; each distinct material once.
 */
function certsInUse(runtime: ProxyRuntime, tls: TlsProvider, svid: { certChainPem: string; bundlePem: string } | undefined): TlsContextCerts[] {
  const seen = new Set<string>();
  const out: TlsContextCerts[] = [];
  for (const ctx of runtime.tlsContexts()) {
    const provided = tls.get(ctx);
    if (!provided.ok || seen.has(provided.material.key)) continue;
    seen.add(provided.material.key);
    const m = provided.material;
    out.push({ ...(m.chainPem ? { certChain: [{ pem: m.chainPem }] } : {}), ...(m.caPem ? { caCert: [{ pem: m.caPem }] } : {}) });
  }
  if (svid) out.push({ certChain: [{ pem: svid.certChainPem }], caCert: [{ pem: svid.bundlePem }] });
  return out;
}
