// Rotation's gate (src/ca/rotation.ts BundleDistribution) answered from the xDS server: before a new CA may
// sign, every connected proxy of its trust domain that validates peers with a keymesh trust bundle over SDS
// must have ACKed a bundle containing that CA.
//
// How "holds" is decided: the xDS server records, per stream, the last ACKed SDS version, and versions are
// content hashes over exactly the secrets in the response (snapshot.ts versionOf). For a connected proxy of
// the trust domain, the secrets its configuration references are computed now (translate's `secrets`) and
// resolved through the same SecretSource the server uses; the proxy holds the current bundle (which contains
// every prepared, active and retiring CA of the trust domain, so also the CA to activate) exactly when its
// last ACKed SDS version equals the version of those current secrets. A proxy whose configuration references
// no validation secret with the CA's anchors (file-based TLS, other trust domains) is not at risk and holds
// vacuously. Anything unknown (configuration cannot be computed, no ACK yet, an older or partial SDS
// subscription) counts as not holding: activation waits, or is forced by the operator.
import type { CertificateAuthority } from '../ca/authority.ts';
import type { BundleDistribution } from '../ca/rotation.ts';
import { TYPE_URLS } from '../envoy/protos.ts';
import type { ProxyStatus } from './ads-server.ts';
import { classifySecretName } from './ca-secret-source.ts';
import { nodeIdOf } from './node-id.ts';
import { encodeNamed, versionOf, type EncodedResource } from './snapshot.ts';
import type { ConfigSource, ProxyIdentity, SecretSource } from './sources.ts';

export interface BundleDistributionDeps {
  readonly authority: CertificateAuthority;
  readonly proxies: () => readonly ProxyStatus[];
  readonly source: ConfigSource;
  readonly secrets: SecretSource;
}

export class XdsBundleDistribution implements BundleDistribution {
  #deps: BundleDistributionDeps | undefined;

  /** Late binding: the CA is built before the xDS server it asks. Until attached, no proxy is connected. */
  attach(deps: BundleDistributionDeps): void {
    this.#deps = deps;
  }

  async lacking(caId: string): Promise<string[]> {
    const deps = this.#deps;
    if (!deps) return [];
    const { trustDomain } = await deps.authority.describeCa(caId);
    const lacking = new Set<string>();
    for (const p of deps.proxies()) {
      if ((await deps.authority.settings(p.identity.mesh)).trustDomain !== trustDomain) continue;
      if (!(await this.#holds(deps, p, trustDomain))) lacking.add(nodeIdOf(p.identity));
    }
    return [...lacking].sort();
  }

  async #holds(deps: BundleDistributionDeps, p: ProxyStatus, trustDomain: string): Promise<boolean> {
    let names: string[];
    try {
      names = [...new Set((await deps.source.configFor(p.identity)).secrets.map((s) => s.name))].sort();
    } catch {
      return false;
    }
    let relevant = false;
    for (const name of names) if (await this.#carriesTrustDomain(deps, name, trustDomain)) relevant = true;
    if (!relevant) return true;
    const acked = p.lastAck[TYPE_URLS.secret]?.version;
    return acked !== undefined && acked === (await currentSdsVersion(deps.secrets, p.identity, names));
  }

  async #carriesTrustDomain(deps: BundleDistributionDeps, name: string, trustDomain: string): Promise<boolean> {
    const what = classifySecretName(name);
    if (what.kind === 'trust-domain') return what.trustDomain === trustDomain;
    if (what.kind !== 'ca-arns') return false;
    for (const arn of what.arns) {
      try {
        if ((await deps.authority.describeCa(arn)).trustDomain === trustDomain) return true;
      } catch {
        // an unknown ARN carries nothing
      }
    }
    return false;
  }
}

/** The SDS version the xDS server would send `proxy` for a subscription to `names`. */
export async function currentSdsVersion(secrets: SecretSource, proxy: ProxyIdentity, names: readonly string[]): Promise<string> {
  const encoded: EncodedResource[] = [];
  for (const name of [...names].sort()) {
    const secret = await secrets.secretFor(proxy, name);
    if (secret) encoded.push(encodeNamed(TYPE_URLS.secret, name, { ...secret, name }));
  }
  return versionOf(encoded);
}
