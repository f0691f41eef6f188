// Envoy resource names, as App Mesh's control plane spells them (they show up in stats that dashboards and the
// seed walkthroughs key on: `listener.0.0.0.0_15000.ssl.handshake`, `cluster.cds_egress_<mesh>_<node>_http_9080.ssl.*`).
import type { Protocol } from './spec.ts';

/** Listeners are named by the address they bind (App Mesh's 0.0.0.0 unless TranslateOptions.listenAddress). */
export function ingressListenerName(address: string, port: number): string {
  return `lds_ingress_${address}_${port}`;
}
export function egressListenerName(address: string, port: number): string {
  return `lds_egress_${address}_${port}`;
}
/** A tcp backend's own egress listener, bound to TranslateOptions.tcpEgressAddress at the backend's port. */
export function tcpEgressListenerName(address: string, port: number): string {
  return `lds_egress_tcp_${address}_${port}`;
}
/** The local application behind a virtual node listener. */
export function ingressClusterName(mesh: string, node: string, protocol: Protocol, port: number): string {
  return `cds_ingress_${mesh}_${node}_${protocol}_${port}`;
}
/** A backend: one listener of a target virtual node. */
export function egressClusterName(mesh: string, node: string, protocol: Protocol, port: number): string {
  return `cds_egress_${mesh}_${node}_${protocol}_${port}`;
}
/** Egress to hosts outside the mesh under `egressFilter.type: ALLOW_ALL`. */
export function passthroughClusterName(mesh: string): string {
  return `cds_egress_${mesh}_passthrough`;
}
/** Egress to AWS APIs (`*.amazonaws.com`), which a virtual node reaches even under DROP_ALL (App Mesh's name). */
export function amazonawsClusterName(mesh: string): string {
  return `cds_egress_${mesh}_amazonaws`;
}
/** A gateway's hop back into its own egress listener (for targets behind a virtual router). */
export function selfRedirectClusterName(mesh: string, gateway: string, protocol: Protocol, port: number): string {
  return `cds_ingress_${mesh}_${gateway}_self_redirect_${protocol}_${port}`;
}
export function ingressRouteConfigName(protocol: Protocol, port: number): string {
  return `rds_ingress_${protocol}_${port}`;
}
export function egressRouteConfigName(port: number): string {
  return `rds_egress_http_${port}`;
}
/** HTTP connection manager / tcp_proxy stat prefix: `ingress` for one listener, `ingress.<protocol>.<port>` for several. */
export function statPrefix(direction: 'ingress' | 'egress', protocol: Protocol, port: number, several: boolean): string {
  return several ? `${direction}.${protocol}.${port}` : direction;
}
