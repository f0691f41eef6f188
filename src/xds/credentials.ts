// The xDS server's TLS: TLS 1.2 or later, the server's own certificate, and a client certificate required and
// chain-checked by Node against the mesh's trust anchors (grpc-js exposes the peer certificate to a handler only
// when the TLS layer authorized it). keymesh then judges the SVID itself (Authenticate: issued, unrevoked, a
// proxy identity). Anchors and the server certificate can be replaced on a running server (CA rotation).
import type { SecureServerOptions } from 'node:http2';
import type { SecureContextOptions } from 'node:tls';
import * as grpc from '@grpc/grpc-js';

export interface XdsTlsMaterial {
  /** PEM: the CA certificates a proxy's SVID must chain to (every mesh's trust bundle). */
  readonly clientRoots: string;
  /** PEM: the server's certificate, then any intermediates. */
  readonly certChain: string;
  /** PEM (PKCS#8). */
  readonly privateKey: string;
}

function contextOptions(m: XdsTlsMaterial): SecureContextOptions {
  return { ca: m.clientRoots, cert: m.certChain, key: m.privateKey };
}

export class XdsServerCredentials extends grpc.ServerCredentials {
  constructor(material: XdsTlsMaterial) {
    const serverOptions: SecureServerOptions = { requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' };
    super(serverOptions, contextOptions(material));
  }

  /** New anchors or server certificate for new connections; established streams keep theirs. */
  update(material: XdsTlsMaterial): void {
    this.updateSecureContextOptions(contextOptions(material));
  }

  override _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}
