// The mTLS material of the proxy bench, made with keymesh's own pki (the same profile its CA gives SVIDs):
// a root CA, the server-side sidecar's certificate, the client-side sidecar's certificate — all ECDSA P-256 —
// and a second, untrusted CA with a client certificate, used only to check that a pair refuses strangers.
// Written as PEM into `dir` (a private temporary directory); private keys 0600.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRootCa, issueLeaf } from '../../src/pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../../src/pki/keys.ts';
import { toPem } from '../../src/pki/pem.ts';

export const SERVER_NAME = 'server.bench.keymesh.test';
export const SERVER_SPIFFE_ID = 'spiffe://bench/server';
export const CLIENT_SPIFFE_ID = 'spiffe://bench/client';

export interface MtlsFiles {
  readonly dir: string;
  /** PEM of the bench CA: what both sidecars trust. */
  readonly caFile: string;
  /** The bench CA's private key (PKCS#8 PEM, 0600), for a setup that wants to issue its own certificates from it. */
  readonly caKey: string;
  /** Server-side sidecar: certificate (leaf only; the CA signs leaves directly), key, and both in one file (haproxy's `crt`). */
  readonly serverCert: string;
  readonly serverKey: string;
  readonly serverBundle: string;
  /** Client-side sidecar: the same three. */
  readonly clientCert: string;
  readonly clientKey: string;
  readonly clientBundle: string;
  /** DNS SAN of the server certificate: what the client side verifies (SNI and name check). */
  readonly serverName: string;
  readonly serverSpiffeId: string;
  readonly clientSpiffeId: string;
  /** A client certificate + key from another CA (not trusted by the pair): for the refusal check only. */
  readonly rogueClientCert: string;
  readonly rogueClientKey: string;
}

export async function makeMtlsFiles(dir: string): Promise<MtlsFiles> {
  const now = Date.now();
  const notBefore = new Date(now - 60_000);
  const notAfter = new Date(now + 24 * 3_600_000);
  const caKeys = await generateKeyPair('ec-p256');
  const ca = await createRootCa(caKeys, { commonName: 'keymesh proxy bench CA', notBefore, notAfter, pathLength: 0, uri: 'spiffe://bench' });
  const serverKeys = await generateKeyPair('ec-p256');
  const server = await issueLeaf({
    publicKey: serverKeys.publicKey, issuerCert: ca, issuerKeys: caKeys,
    uris: [SERVER_SPIFFE_ID], dnsNames: [SERVER_NAME], notBefore, notAfter,
  });
  const clientKeys = await generateKeyPair('ec-p256');
  const client = await issueLeaf({
    publicKey: clientKeys.publicKey, issuerCert: ca, issuerKeys: caKeys,
    uris: [CLIENT_SPIFFE_ID], dnsNames: [], notBefore, notAfter,
  });
  const rogueCaKeys = await generateKeyPair('ec-p256');
  const rogueCa = await createRootCa(rogueCaKeys, { commonName: 'not the bench CA', notBefore, notAfter, pathLength: 0, uri: 'spiffe://rogue' });
  const rogueKeys = await generateKeyPair('ec-p256');
  const rogue = await issueLeaf({
    publicKey: rogueKeys.publicKey, issuerCert: rogueCa, issuerKeys: rogueCaKeys,
    uris: [CLIENT_SPIFFE_ID], dnsNames: [], notBefore, notAfter,
  });

  const files: MtlsFiles = {
    dir,
    caFile: join(dir, 'ca.pem'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.pem'),
    serverKey: join(dir, 'server.key'),
    serverBundle: join(dir, 'server-bundle.pem'),
    clientCert: join(dir, 'client.pem'),
    clientKey: join(dir, 'client.key'),
    clientBundle: join(dir, 'client-bundle.pem'),
    serverName: SERVER_NAME,
    serverSpiffeId: SERVER_SPIFFE_ID,
    clientSpiffeId: CLIENT_SPIFFE_ID,
    rogueClientCert: join(dir, 'rogue-client.pem'),
    rogueClientKey: join(dir, 'rogue-client.key'),
  };
  const secret = { mode: 0o600 };
  const serverKeyPem = await exportPrivateKeyPem(serverKeys);
  const clientKeyPem = await exportPrivateKeyPem(clientKeys);
  writeFileSync(files.caFile, toPem(ca));
  writeFileSync(files.caKey, await exportPrivateKeyPem(caKeys), secret);
  writeFileSync(files.serverCert, toPem(server));
  writeFileSync(files.serverKey, serverKeyPem, secret);
  writeFileSync(files.serverBundle, toPem(server) + serverKeyPem, secret);
  writeFileSync(files.clientCert, toPem(client));
  writeFileSync(files.clientKey, clientKeyPem, secret);
  writeFileSync(files.clientBundle, toPem(client) + clientKeyPem, secret);
  writeFileSync(files.rogueClientCert, toPem(rogue));
  writeFileSync(files.rogueClientKey, await exportPrivateKeyPem(rogueKeys), secret);
  return files;
}
