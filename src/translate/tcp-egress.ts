// tcp backends without traffic redirection. The egress listener tells tcp backends apart by the ORIGINAL
// destination port that iptables preserved; on a machine without iptables an application that dials its
// sidecar's egress port carries no such port. The standard answer of meshes without redirection (Istio's
// Sidecar egress listener with a `bind`, Consul Connect's upstream `local_bind_port`): a listener per tcp
// backend port P, bound to an address the proxy is given (TranslateOptions.tcpEgressAddress) at P, whose only
// chain is the egress chain's tcp_proxy for P (same clusters, weights, idle timeout, stat prefix and access
// log). The application connects to <address>:P as it would to the service.
import type { JsonObject } from '../model/json.ts';
import type { TcpChain } from './egress.ts';
import { listenerAddress } from './envoy.ts';
import { tcpEgressListenerName } from './names.ts';

/** An address:port another listener of the proxy binds. */
export interface BoundPort {
  readonly address: string;
  readonly port: number;
}

const isIpv4 = (a: string) => !a.includes(':');

/**
 * Whether two binds at one port would clash: the same address; '::' with anything (listeners bound to it also
 * take IPv4, see listenerAddress); '0.0.0.0' with any IPv4 address.
 */
function overlaps(a: string, b: string): boolean {
  if (a === b || a === '::' || b === '::') return true;
  return (a === '0.0.0.0' && isIpv4(b)) || (b === '0.0.0.0' && isIpv4(a));
}

/**
 * One listener per tcp backend port, bound to `address`; ports in `taken` on an overlapping address are
 * skipped (the bind would fail, and Envoy would refuse the whole listener update).
 */
export function tcpEgressListeners(address: string, chains: readonly TcpChain[], taken: readonly BoundPort[]): JsonObject[] {
  return chains
    .filter((c) => !taken.some((t) => t.port === c.port && overlaps(t.address, address)))
    .map((c) => ({
      name: tcpEgressListenerName(address, c.port),
      address: listenerAddress(address, c.port),
      // A copy: the egress listener's chain holds the same filter, and outputs share no object.
      filterChains: [{ name: `egress_tcp_${c.port}`, filters: [structuredClone(c.filter)] }],
    }));
}
