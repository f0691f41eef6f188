// Envoy's filter chain matching: narrow the chains step by step, the most specific criterion first, falling
// back at each step to the chains that do not set it (destination port, then server name: exact before the
// longest `*.` wildcard, then transport protocol, then application protocols). Pure.
import type { FilterChainSpec } from './compile.ts';

export interface ConnectionFacts {
  readonly destinationPort: number;
  readonly serverName: string | undefined;
  readonly transportProtocol: 'tls' | 'raw_buffer';
  /** ALPN offers (TLS) or the detected HTTP protocol (http/1.1, h2c, ...). */
  readonly applicationProtocols: readonly string[];
}

function narrow<T>(chains: readonly T[], matches: (c: T) => boolean | undefined): T[] {
  const hit = chains.filter((c) => matches(c) === true);
  return hit.length > 0 ? hit : chains.filter((c) => matches(c) === undefined);
}

function serverNameStep(chains: readonly FilterChainSpec[], sni: string | undefined): FilterChainSpec[] {
  if (sni !== undefined) {
    const exact = chains.filter((c) => c.match.serverNames?.includes(sni));
    if (exact.length > 0) return exact;
    // Wildcards: the longest matching suffix wins.
    let best = -1;
    let found: FilterChainSpec[] = [];
    for (const c of chains) {
      for (const n of c.match.serverNames ?? []) {
        if (!n.startsWith('*.') || !sni.endsWith(n.slice(1)) || n.length < best) continue;
        if (n.length > best) found = [];
        best = n.length;
        if (!found.includes(c)) found.push(c);
      }
    }
    if (found.length > 0) return found;
  }
  return chains.filter((c) => c.match.serverNames === undefined);
}

/** The chain Envoy would pick, or undefined (Envoy closes the connection: `no_filter_chain_match`). */
export function selectChain(chains: readonly FilterChainSpec[], facts: ConnectionFacts): FilterChainSpec | undefined {
  let left = narrow(chains, (c) => (c.match.destinationPort === undefined ? undefined : c.match.destinationPort === facts.destinationPort));
  left = serverNameStep(left, facts.serverName);
  left = narrow(left, (c) => (c.match.transportProtocol === undefined ? undefined : c.match.transportProtocol === facts.transportProtocol));
  left = narrow(left, (c) => (c.match.applicationProtocols === undefined ? undefined : c.match.applicationProtocols.some((p) => facts.applicationProtocols.includes(p))));
  return left[0];
}

/** Whether any chain's match needs to know what the first bytes are (TLS, SNI, ALPN, HTTP version). */
export function needsInspection(chains: readonly FilterChainSpec[]): boolean {
  return chains.some((c) => c.match.serverNames !== undefined || c.match.transportProtocol !== undefined || c.match.applicationProtocols !== undefined);
}
