// PKCS#10 certificate signing requests: made by identity clients, checked by the CA. parseCsr proves the
// requester holds the private key (the self-signature) and returns only what keymesh may issue for.
import type { Pkcs10CertificateRequest, SubjectAlternativeNameExtension } from '@peculiar/x509';
import { CsrError } from '../errors/index.ts';
import { ALGORITHMS, describeAlgorithm, keyTypeFromAlgorithm, SUPPORTED_KEY_TYPES } from './algorithms.ts';
import type { KeyPair, ParsedCsr } from './api.ts';
import { sanExtension } from './extensions.ts';
import { aBlock, splitPem } from './pem-blocks.ts';
import { x509 } from './provider.ts';
import { dnsNameProblem, uriProblem } from './san.ts';

const WHAT = 'certificate signing request';
const SAN_OID = '2.5.29.17';
const CSR_LABELS = new Set(['CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST']);

export async function createCsr(keys: KeyPair, opts: { commonName?: string; uris?: string[]; dnsNames?: string[] }): Promise<string> {
  const uris = opts.uris ?? [];
  const dnsNames = opts.dnsNames ?? [];
  checkNames(uris, dnsNames);
  const extensions = uris.length + dnsNames.length > 0 ? [sanExtension(uris, dnsNames, !opts.commonName)] : [];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    ...(opts.commonName ? { name: [{ CN: [opts.commonName] }] } : {}),
    keys: { privateKey: keys.privateKey, publicKey: keys.publicKey },
    signingAlgorithm: ALGORITHMS[keys.type].sign,
    extensions,
  });
  return `${csr.toString('pem')}\n`;
}

export async function parseCsr(pem: string): Promise<ParsedCsr> {
  const blocks = splitPem(pem, (problem) => new CsrError(`${WHAT}: ${problem}`));
  const block = blocks.find((b) => CSR_LABELS.has(b.label));
  if (!block) throw new CsrError(`${WHAT}: expected a CERTIFICATE REQUEST but found ${aBlock(blocks[0]?.label ?? '')}`);
  if (blocks.length > 1) throw new CsrError(`${WHAT}: expected one PEM block, found ${blocks.length}`);

  let csr: Pkcs10CertificateRequest;
  let sans: SubjectAlternativeNameExtension | null;
  try {
    csr = new x509.Pkcs10CertificateRequest(block.der);
    const ext = csr.getExtension(SAN_OID);
    if (ext && !(ext instanceof x509.SubjectAlternativeNameExtension)) throw new Error('unreadable subjectAltName');
    sans = ext;
  } catch {
    throw new CsrError(`${WHAT}: the CERTIFICATE REQUEST block is damaged: its content is not a valid PKCS#10 request`);
  }

  const keyType = keyTypeFromAlgorithm(csr.publicKey.algorithm);
  if (!keyType) throw new CsrError(`${WHAT}: unsupported key type ${describeAlgorithm(csr.publicKey.algorithm)}; keymesh issues for ${SUPPORTED_KEY_TYPES}`);
  // A signature we cannot even check (unknown algorithm) is treated like a bad one: possession is unproven.
  const signed = await csr.verify().catch(() => false);
  if (!signed) throw new CsrError(`${WHAT}: the signature does not verify (the request was altered, or not signed by the key it carries)`);

  const uris: string[] = [];
  const dnsNames: string[] = [];
  for (const name of sans?.names.items ?? []) {
    if (name.type === 'url') uris.push(name.value);
    else if (name.type === 'dns') dnsNames.push(name.value);
    // Dropping a requested name silently would hand out a certificate the requester did not ask for.
    else throw new CsrError(`${WHAT}: asks for a ${name.type.toUpperCase()} subject alternative name (${name.value}); keymesh issues only DNS and URI names`);
  }
  checkNames(uris, dnsNames);
  return {
    publicKey: await csr.publicKey.export(ALGORITHMS[keyType].import, ['verify']),
    keyType,
    subject: csr.subject,
    uris,
    dnsNames,
  };
}

function checkNames(uris: readonly string[], dnsNames: readonly string[]): void {
  for (const uri of uris) {
    const problem = uriProblem(uri);
    if (problem) throw new CsrError(`${WHAT}: URI ${JSON.stringify(uri)}: ${problem}`);
  }
  for (const dns of dnsNames) {
    const problem = dnsNameProblem(dns);
    if (problem) throw new CsrError(`${WHAT}: DNS name ${JSON.stringify(dns)}: ${problem}`);
  }
}
