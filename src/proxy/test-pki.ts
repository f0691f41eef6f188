// Test certificates on disk, shaped like seed 004's files: a CA, a server and a client certificate with DNS
// SANs, one from another CA and one with an unexpected SAN. For the proxy's tests only.
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRootCa, issueLeaf } from '../pki/issue.ts';
import { exportPrivateKeyPem, generateKeyPair } from '../pki/keys.ts';
import { toPem } from '../pki/pem.ts';

export interface PemFiles { readonly cert: string; readonly key: string; readonly certPem: string; readonly keyPem: string }

export interface TestPki {
  readonly dir: string;
  readonly caPath: string;
  readonly caPem: string;
  readonly server: PemFiles;
  readonly client: PemFiles;
  readonly wrongSan: PemFiles;
  readonly rogue: PemFiles;
  /** Issues another leaf from the CA into the directory. */
  issue(name: string, sans: { dns?: string[]; uris?: string[] }): Promise<PemFiles>;
}

const HOUR = 3_600_000;

export async function makeTestPki(): Promise<TestPki> {
  const dir = mkdtempSync(join(tmpdir(), 'keymesh-proxy-pki-'));
  const window = { notBefore: new Date(Date.now() - HOUR), notAfter: new Date(Date.now() + 24 * HOUR) };
  const caKeys = await generateKeyPair('ec-p256');
  const ca = await createRootCa(caKeys, { commonName: 'proxy test CA', pathLength: 0, ...window });
  const rogueKeys = await generateKeyPair('ec-p256');
  const rogueCa = await createRootCa(rogueKeys, { commonName: 'rogue CA', pathLength: 0, ...window });
  const write = (name: string, text: string, mode = 0o644) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    chmodSync(p, mode);
    return p;
  };
  const caPath = write('ca_cert.pem', toPem(ca));
  const leaf = async (name: string, sans: { dns?: string[]; uris?: string[] }, issuer = ca, issuerKeys = caKeys): Promise<PemFiles> => {
    const keys = await generateKeyPair('ec-p256');
    const cert = await issueLeaf({ publicKey: keys.publicKey, issuerCert: issuer, issuerKeys, commonName: name, dnsNames: sans.dns ?? [], uris: sans.uris ?? [], ...window });
    const certPem = toPem(cert);
    const keyPem = await exportPrivateKeyPem(keys);
    return { cert: write(`${name}_cert_chain.pem`, certPem), key: write(`${name}_key.pem`, keyPem, 0o600), certPem, keyPem };
  };
  return {
    dir, caPath, caPem: toPem(ca),
    server: await leaf('colorteller', { dns: ['colorteller.mesh.local'] }),
    client: await leaf('gateway', { dns: ['gateway.mesh.local'] }),
    wrongSan: await leaf('intruder', { dns: ['intruder.mesh.local'] }),
    rogue: await leaf('rogue', { dns: ['gateway.mesh.local'] }, rogueCa, rogueKeys),
    issue: (name, sans) => leaf(name, sans),
  };
}
