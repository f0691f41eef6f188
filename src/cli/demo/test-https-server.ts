// A real HTTPS server on 127.0.0.1 with the test PKI's server certificate (colorteller.mesh.local), for the tests of
// the walkthroughs' own TLS clients. For tests only.
import { rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { makeTestPki, type TestPki } from '../../proxy/test-pki.ts';

export interface TestHttpsServer {
  readonly pki: TestPki;
  readonly server: Server;
  readonly port: number;
  /** Closes the server and its connections, and removes the PKI's files. */
  close(): void;
}

/** A new test PKI and the server answering with `handler`, listening on a port the OS chose. */
export async function startTestHttpsServer(handler: RequestListener): Promise<TestHttpsServer> {
  const pki = await makeTestPki();
  const server = createServer({ cert: pki.server.certPem, key: pki.server.keyPem }, handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    pki, server, port: (server.address() as AddressInfo).port,
    close: () => {
      server.closeAllConnections();
      server.close();
      rmSync(pki.dir, { recursive: true, force: true });
    },
  };
}
