// The identity endpoint's own TLS identity. Workloads have no SVID yet when they bootstrap, so they cannot
// check the endpoint against a mesh bundle; instead they pin a small control-plane CA that keymesh creates
// once in `<dataDir>/control-plane/` (its certificate is public: ca-cert.pem; its key is 0600, encrypted
// with the CA passphrase when one is set). The server certificate is re-issued from it at every start.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../../base/clock.ts';
import { CONTROL_PLANE_SERVER_NAME } from '../../base/control-plane.ts';
import { KeyStore } from '../../ca/key-store.ts';
import type { KeyPair } from '../../pki/api.ts';
import { createRootCa, issueLeaf } from '../../pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../../pki/keys.ts';
import { parseCertificatePem, toPem } from '../../pki/pem.ts';

const CA_CERT = 'ca-cert.pem';
const CA_KEY = 'ca-key.pem';
const YEAR = 365 * 24 * 60 * 60 * 1000;
const BACKDATE_MS = 60_000;

export interface ControlPlaneTls {
  /** What workloads pin (PEM); also at `<dataDir>/control-plane/ca-cert.pem`. */
  readonly caCertPem: string;
  readonly caCertPath: string;
  readonly certPem: string;
  readonly keyPem: string;
}

export async function loadControlPlaneTls(dataDir: string, clock: Clock, passphrase?: string): Promise<ControlPlaneTls> {
  const dir = join(dataDir, 'control-plane');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keys = new KeyStore({ dir, ...(passphrase === undefined ? {} : { passphrase }) });
  const caCertPath = join(dir, CA_CERT);
  const now = clock.now();
  let caKeys: KeyPair;
  if (!existsSync(caCertPath)) {
    caKeys = await generateKeyPair('ec-p256');
    const ca = await createRootCa(caKeys, {
      commonName: 'keymesh control plane CA', notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + 10 * YEAR), pathLength: 0,
    });
    await keys.save(CA_KEY, caKeys);
    writeFileSync(caCertPath, toPem(ca), { mode: 0o644 });
  } else {
    caKeys = await keys.load(CA_KEY);
  }
  const caCertPem = readFileSync(caCertPath, 'utf8');
  const caCert = parseCertificatePem(caCertPem, caCertPath);
  const serverKeys = await generateKeyPair('ec-p256');
  const cert = await issueLeaf({
    publicKey: serverKeys.publicKey, issuerCert: caCert, issuerKeys: caKeys, commonName: CONTROL_PLANE_SERVER_NAME,
    uris: [], dnsNames: [CONTROL_PLANE_SERVER_NAME, 'localhost'], notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(Math.min(now + YEAR, caCert.notAfter.getTime())),
  });
  return { caCertPem, caCertPath, certPem: toPem(cert), keyPem: await exportPrivateKeyPem(serverKeys) };
}
