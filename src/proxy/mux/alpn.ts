// Which ALPN protocol a TLS listener of the HTTP connection manager selects. keymesh's own proxies offer
// `keymesh-mux/1` first (session.ts); every other client gets what it would have had without keymesh's offer.
import { MUX_ALPN } from './frames.ts';

export type HttpCodec = 'AUTO' | 'HTTP1' | 'HTTP2';

/**
 * The protocol to select from a client's ALPN offer, or undefined to refuse the handshake (Node's callback cannot
 * decline to choose). `configured`: the chain's alpn_protocols, in preference order (Envoy's server preference).
 * With none configured Envoy negotiates nothing and the codec reads the first bytes; choosing the HTTP version
 * the client offers leaves it speaking what it would have spoken then.
 */
export function selectHttpAlpn(offered: readonly string[], configured: readonly string[], codec: HttpCodec): string | undefined {
  if (codec !== 'HTTP2' && offered.includes(MUX_ALPN)) return MUX_ALPN;
  if (configured.length > 0) return configured.find((p) => offered.includes(p));
  if (codec !== 'HTTP2' && offered.includes('http/1.1')) return 'http/1.1';
  if (codec !== 'HTTP1' && offered.includes('h2')) return 'h2';
  if (codec !== 'HTTP2' && offered.includes('http/1.0')) return 'http/1.0';
  return undefined;
}
