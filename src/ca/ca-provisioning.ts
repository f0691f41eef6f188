// Where a trust domain's CAs come from: a self-signed root made on first use (or for a rotation), a CA
// certificate and key brought by the user, or keymesh's own key signed offline by the user's root through a
// CSR. Each new CA is active when its trust domain has none, and otherwise prepared: in the bundle, waiting
// for rotation's activate.
import { randomUUID } from 'node:crypto';
import type { X509Certificate } from '@peculiar/x509';
import { BadRequestError, ConflictError } from '../errors/index.ts';
import type { KeyPair } from '../pki/api.ts';
import { createCsr } from '../pki/csr.ts';
import { certificateMatchesKey, createRootCa } from '../pki/issue.ts';
import { generateKeyPair, importPrivateKeyPem } from '../pki/keys.ts';
import { parseCertificateChainPem, parseCertificatePem, toPem } from '../pki/pem.ts';
import { verifyChain } from '../pki/verify.ts';
import type { CaOrigin, CaRecord, CaStatus } from '../store/ca-store.ts';
import { caArn } from './arns.ts';
import { caCertificateProblem, crlSignProblem, isSelfIssued, pathLengthProblem, uriSans, validityProblem } from './cert-facts.ts';
import { findCa, wholeSeconds, type CaContext } from './context.ts';
import { checkKeyType, type TrustDomains } from './trust-domains.ts';

export const DEFAULT_CA_VALIDITY_MS = 365 * 24 * 60 * 60 * 1000;
/** A new root is backdated more than its leaves, so a proxy whose clock is a little behind accepts both. */
const CA_BACKDATE_MS = 5 * 60 * 1000;

export interface ImportCaInput {
  /** The CA certificate keymesh will sign with. */
  certPem: string;
  /** Its private key (PKCS#8 or traditional PEM, optionally encrypted with `keyPassphrase`). */
  keyPem: string;
  keyPassphrase?: string;
  /** For a CA that is not a root: the certificates above it, issuer first, ending with the root. */
  chainPem?: string;
}

export interface CsrOptions {
  commonName?: string;
  keyType?: string;
}

export class CaProvisioning {
  readonly #ctx: CaContext;
  readonly #trustDomains: TrustDomains;
  readonly #caValidityMs: number;
  /** First-use creation in progress, per mesh, so concurrent first issuances make one root. */
  readonly #creating = new Map<string, Promise<CaRecord>>();

  constructor(ctx: CaContext, trustDomains: TrustDomains, options: { caValidityMs?: number } = {}) {
    this.#ctx = ctx;
    this.#trustDomains = trustDomains;
    this.#caValidityMs = options.caValidityMs ?? DEFAULT_CA_VALIDITY_MS;
  }

  /** The mesh's signing CA; on first use (no CA at all) a self-signed root is created. */
  async active(mesh: string): Promise<CaRecord> {
    const found = await this.#activeOrNone(mesh);
    if (found) return found;
    let creating = this.#creating.get(mesh);
    if (!creating) {
      creating = this.#createFirst(mesh).finally(() => this.#creating.delete(mesh));
      this.#creating.set(mesh, creating);
    }
    return creating;
  }

  /** A new keymesh root for the mesh: active if the mesh has no active CA, else prepared (rotation). */
  async createRoot(mesh: string): Promise<CaRecord> {
    const settings = await this.#trustDomains.pin(mesh);
    const td = settings.trustDomain;
    const keys = await generateKeyPair(settings.keyType);
    const id = randomUUID();
    const notBefore = wholeSeconds(this.#ctx.clock.now()) - CA_BACKDATE_MS;
    const cert = await createRootCa(keys, {
      commonName: `keymesh CA ${id.slice(0, 8)} ${td}`.slice(0, 64),
      notBefore: new Date(notBefore),
      notAfter: new Date(notBefore + this.#caValidityMs),
      pathLength: 0,
      uri: `spiffe://${td}`,
    });
    return this.#add(mesh, td, id, 'generated', keys, cert, [], '');
  }

  async importCa(mesh: string, input: ImportCaInput): Promise<CaRecord> {
    const now = this.#ctx.clock.now();
    const { trustDomain } = await this.#trustDomains.settingsFor(mesh);
    const cert = parseCertificatePem(input.certPem, 'the CA certificate');
    const chain = input.chainPem?.trim() ? parseCertificateChainPem(input.chainPem, 'the CA chain') : [];
    const keys = await importPrivateKeyPem(input.keyPem, 'the CA private key', input.keyPassphrase);
    if (!(await certificateMatchesKey(cert, keys))) {
      throw new BadRequestError(`The private key does not belong to the CA certificate ${cert.subject}.`, 'KM_ERR_CA_KEY_MISMATCH');
    }
    checkCaCertificate(cert, 'The CA certificate', now, trustDomain);
    if (chain.length === 0) {
      if (!isSelfIssued(cert) || !(await cert.isSelfSigned())) {
        throw new BadRequestError(`The CA certificate ${cert.subject} is issued by ${cert.issuer}: also give its chain (the issuer certificates, ending with the root) so keymesh can build the trust bundle.`);
      }
    } else {
      await checkChain(cert, chain, now);
    }
    await this.#trustDomains.pin(mesh);
    return this.#add(mesh, trustDomain, randomUUID(), 'imported', keys, cert, chain, '');
  }

  /** Makes a key and a CSR for the user's offline root to sign; the CA is pending until importSigned. */
  async prepareCsr(mesh: string, options: CsrOptions = {}): Promise<{ ca: CaRecord; csrPem: string }> {
    const settings = await this.#trustDomains.pin(mesh);
    const td = settings.trustDomain;
    const keys = await generateKeyPair(options.keyType === undefined ? settings.keyType : checkKeyType(options.keyType));
    const id = randomUUID();
    const csrPem = await createCsr(keys, { commonName: (options.commonName ?? `keymesh CA ${id.slice(0, 8)} ${td}`).slice(0, 64), uris: [`spiffe://${td}`] });
    const ca = await this.#add(mesh, td, id, 'offline-signed', keys, undefined, [], csrPem);
    return { ca, csrPem };
  }

  /** Completes a pending CA with the certificate the offline root signed and that root's chain. */
  async importSigned(ref: string, certPem: string, rootChainPem: string): Promise<CaRecord> {
    const ca = await findCa(this.#ctx.store, ref);
    if (ca.status !== 'pending') throw new ConflictError(`CA ${ca.id} is ${ca.status}, not pending: it is not waiting for a signed certificate.`);
    const now = this.#ctx.clock.now();
    const cert = parseCertificatePem(certPem, 'the signed CA certificate');
    if (!rootChainPem.trim()) throw new BadRequestError('The root chain is required: the certificate of the root that signed the CSR (and any CAs in between, issuer first).');
    const chain = parseCertificateChainPem(rootChainPem, 'the root chain');
    const keys = await this.#ctx.keys.load(ca.keyFile);
    if (!(await certificateMatchesKey(cert, keys))) {
      throw new BadRequestError(`The signed certificate is not for the key of CA ${ca.id}: it was not made from the CSR keymesh gave out for this CA.`, 'KM_ERR_CA_KEY_MISMATCH');
    }
    checkCaCertificate(cert, 'The signed certificate', now, ca.trustDomain);
    await checkChain(cert, chain, now);
    const status = await this.#newStatus(ca.trustDomain);
    const done = await this.#ctx.store.completePendingCa(ca.id, {
      certPem: toPem(cert), chainPem: toPem(chain), notBefore: cert.notBefore.getTime(), notAfter: cert.notAfter.getTime(), status,
    }, now);
    this.#announce(done);
    return done;
  }

  async #activeOrNone(mesh: string): Promise<CaRecord | undefined> {
    const cas = await this.#ctx.store.listCas({ mesh, statuses: ['pending', 'prepared', 'active'] });
    const active = cas.find((c) => c.status === 'active');
    if (active) return active;
    const next = cas[0];
    if (next?.status === 'pending') {
      throw new ConflictError(`Mesh ${mesh}'s CA ${next.id} is waiting for its certificate from your root (import the signed CSR); keymesh cannot issue until then.`, 'KM_ERR_CA_PENDING');
    }
    if (next) throw new ConflictError(`Mesh ${mesh} has no active CA; activate CA ${next.id} (prepared).`, 'KM_ERR_CA_NOT_ACTIVE');
    return undefined;
  }

  async #createFirst(mesh: string): Promise<CaRecord> {
    try {
      return await this.createRoot(mesh);
    } catch (e) {
      // Another process made the first CA meanwhile: use it.
      const winner = e instanceof ConflictError ? await this.#activeOrNone(mesh) : undefined;
      if (winner) return winner;
      throw e;
    }
  }

  async #newStatus(trustDomain: string): Promise<'active' | 'prepared'> {
    return (await this.#ctx.store.listCas({ trustDomain, statuses: ['active'] })).length ? 'prepared' : 'active';
  }

  /** Writes the key file, then the record; a record that cannot be stored takes its key file with it. */
  async #add(mesh: string, trustDomain: string, id: string, origin: CaOrigin, keys: KeyPair, cert: X509Certificate | undefined, chain: readonly X509Certificate[], csrPem: string): Promise<CaRecord> {
    const now = this.#ctx.clock.now();
    const status: CaStatus = cert ? await this.#newStatus(trustDomain) : 'pending';
    const keyFile = `ca-${id}.key.pem`;
    const record: CaRecord = {
      id, arn: caArn(this.#ctx.region, this.#ctx.account, id), mesh, trustDomain, origin, keyType: keys.type, keyFile,
      certPem: cert ? toPem(cert) : '', chainPem: chain.length ? toPem(chain) : '', csrPem, status,
      notBefore: cert?.notBefore.getTime() ?? 0, notAfter: cert?.notAfter.getTime() ?? 0, lastIssuedNotAfter: 0,
      createdAt: now, updatedAt: now, activatedAt: status === 'active' ? now : null, retiringSince: null, retiredAt: null,
    };
    await this.#ctx.keys.save(keyFile, keys);
    try {
      await this.#ctx.store.createCa(record);
    } catch (e) {
      await this.#ctx.keys.remove(keyFile);
      throw e;
    }
    this.#announce(record);
    return record;
  }

  #announce(ca: CaRecord): void {
    if (ca.status === 'pending') return;
    this.#ctx.events.emit({ type: 'bundle', mesh: ca.mesh, trustDomain: ca.trustDomain });
    if (ca.status === 'active') this.#ctx.events.emit({ type: 'issuer', mesh: ca.mesh, trustDomain: ca.trustDomain, caId: ca.id });
  }
}

/** The CA keymesh will sign certificates and CRLs with. */
function checkCaCertificate(cert: X509Certificate, what: string, now: number, trustDomain: string): void {
  const problem = caCertificateProblem(cert) ?? crlSignProblem(cert) ?? validityProblem(cert, now);
  if (problem) throw new BadRequestError(`${what} ${cert.subject} cannot be used as a CA: ${problem}.`, 'KM_ERR_CA_CERTIFICATE');
  const foreign = uriSans(cert).find((u) => u.startsWith('spiffe://') && u !== `spiffe://${trustDomain}`);
  if (foreign) throw new BadRequestError(`${what} names SPIFFE trust domain ${foreign}, but this mesh's trust domain is spiffe://${trustDomain}.`, 'KM_ERR_CA_CERTIFICATE');
}

/** The CA must chain to the last certificate of `chain`, every certificate above it being a valid CA. */
async function checkChain(cert: X509Certificate, chain: readonly X509Certificate[], now: number): Promise<void> {
  chain.forEach((c, i) => {
    const problem = caCertificateProblem(c) ?? validityProblem(c, now) ?? pathLengthProblem(c, i + 1);
    if (problem) throw new BadRequestError(`The chain certificate ${c.subject} cannot be used: ${problem}.`, 'KM_ERR_CA_CERTIFICATE');
  });
  await verifyChain(cert, chain.slice(0, -1), [chain.at(-1)!], new Date(now));
}
