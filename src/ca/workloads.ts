// From an identity {mesh, kind, name} to what its SVID says: the SPIFFE ID (from the mesh's trust domain)
// and the DNS names from the resource's service discovery. The resource must exist: keymesh issues
// identities only to virtual nodes and gateways that the mesh defines.
import { NotFoundError } from '../errors/index.ts';
import { isJsonObject, type JsonObject } from '../model/json.ts';
import { describeKey, type ResourceKey } from '../model/kinds.ts';
import { dnsNameProblem } from '../pki/san.ts';
import type { ResourceStore } from '../store/store.ts';
import { spiffeIdFor, type Identity } from './spiffe.ts';
import type { TrustDomains } from './trust-domains.ts';

export interface Workload {
  readonly identity: Identity;
  readonly trustDomain: string;
  readonly spiffeId: string;
  /** DNS SANs the SVID carries. */
  readonly dnsNames: readonly string[];
}

export class Workloads {
  readonly #resources: ResourceStore;
  readonly #trustDomains: TrustDomains;

  constructor(resources: ResourceStore, trustDomains: TrustDomains) {
    this.#resources = resources;
    this.#trustDomains = trustDomains;
  }

  /**
   * SPIFFE ID only; works for identities whose resource is gone (revocation needs that). Refuses a mesh whose
   * default trust domain is another mesh's, whose SPIFFE IDs these would be.
   */
  async spiffeIdOf(identity: Identity): Promise<{ trustDomain: string; spiffeId: string }> {
    const { trustDomain } = await this.#trustDomains.ownSettingsFor(identity.mesh);
    return { trustDomain, spiffeId: spiffeIdFor(trustDomain, identity) };
  }

  async resolve(identity: Identity): Promise<Workload> {
    const { trustDomain, spiffeId } = await this.spiffeIdOf(identity);
    const key: ResourceKey = { kind: identity.kind, mesh: identity.mesh, parent: '', name: identity.name };
    const record = await this.#resources.get(key);
    if (!record) throw new NotFoundError(`${describeKey(key)} does not exist; keymesh issues identities only to existing virtual nodes and gateways.`);
    const dnsNames = identity.kind === 'virtualNode' ? serviceDiscoveryNames(record.spec) : [];
    return { identity: { mesh: identity.mesh, kind: identity.kind, name: identity.name }, trustDomain, spiffeId, dnsNames };
  }
}

/** `dns.hostname`, or `<serviceName>.<namespaceName>` for Cloud Map; names that are not DNS names (an IP address) are left out. */
export function serviceDiscoveryNames(spec: JsonObject): string[] {
  const sd = spec.serviceDiscovery;
  if (!isJsonObject(sd)) return [];
  let name: string | undefined;
  if (isJsonObject(sd.dns) && typeof sd.dns.hostname === 'string') name = sd.dns.hostname;
  else if (isJsonObject(sd.awsCloudMap) && typeof sd.awsCloudMap.serviceName === 'string' && typeof sd.awsCloudMap.namespaceName === 'string') {
    name = `${sd.awsCloudMap.serviceName}.${sd.awsCloudMap.namespaceName}`;
  }
  if (name === undefined) return [];
  name = name.toLowerCase();
  return dnsNameProblem(name) === null && !/^[0-9.]+$/.test(name) ? [name] : [];
}
