// The xDS server's ConfigSource over the App Mesh store: a proxy's configuration is `translate()` over the
// MeshView of its mesh.
//
// - The MeshView of a mesh is read once (store.listMesh) and cached until the store reports a change in that
//   mesh; the next configFor rebuilds it.
// - Affected proxies: a committed change in mesh M affects every proxy of mesh M. This is deliberately coarse
//   and always correct (translation of one proxy can read any resource of its mesh: backends, routers, routes,
//   gateway routes, other nodes' listeners and TLS); the xDS server only pushes when a proxy's resources really
//   changed (versions are content hashes), so the cost is one translation per proxy of the mesh per change.
// - Endpoints: the registered instances of the mesh (endpointsByNode), read once per change like the view and
//   re-read when the registry reports a change of membership (endpointsChanged). A node with no instance and
//   DNS service discovery gets a DNS cluster on its hostname.
// - Per proxy: its placement (node.metadata: listen address, ingress/egress ports) goes into translate's options.
import { NotFoundError } from '../errors/index.ts';
import type { ResourceRecord } from '../model/resource.ts';
import type { ResourceStore } from '../store/store.ts';
import type { EndpointRecord } from '../store/endpoint-store.ts';
import type { Endpoint, EnvoyConfig, MeshView, TranslateOptions } from '../translate/api.ts';
import { translate } from '../translate/translate.ts';
import { endpointsByNode } from './endpoints-by-node.ts';
import type { PlacementOptions } from './node-metadata.ts';
import type { AffectedPredicate, ConfigSource, ProxyIdentity } from './sources.ts';

export interface StoreConfigSourceOptions {
  readonly store: ResourceStore;
  readonly translateOptions?: TranslateOptions;
  /**
   * The issuing CA of each managed certificate of a mesh (certificate ARN → CA ARN), so that a client with no
   * client policy validates an ACM server certificate against its CA, as App Mesh does.
   */
  readonly acmIssuers?: (mesh: string) => Promise<Readonly<Record<string, string>>>;
  /** The registered instances of a mesh (EndpointRegistry.list); none when omitted. */
  readonly endpoints?: (mesh: string) => Promise<readonly EndpointRecord[]>;
}

type Endpoints = Readonly<Record<string, readonly Endpoint[]>>;

/** One promise per mesh, made on first use and forgotten on a change (or when it fails). */
class PerMesh<T> {
  readonly #entries = new Map<string, Promise<T>>();
  readonly #read: (mesh: string) => Promise<T>;

  constructor(read: (mesh: string) => Promise<T>) {
    this.#read = read;
  }

  get(mesh: string): Promise<T> {
    let entry = this.#entries.get(mesh);
    if (!entry) {
      const made = this.#read(mesh);
      entry = made;
      this.#entries.set(mesh, made);
      made.catch(() => {
        if (this.#entries.get(mesh) === made) this.#entries.delete(mesh);
      });
    }
    return entry;
  }

  forget(mesh: string): void {
    this.#entries.delete(mesh);
  }

  clear(): void {
    this.#entries.clear();
  }
}

/** Groups one mesh's records into the view translate reads; NotFoundError when the mesh does not exist. */
export function meshViewOf(mesh: string, records: readonly ResourceRecord[]): MeshView {
  const meshRecord = records.find((r) => r.kind === 'mesh' && r.name === mesh);
  if (!meshRecord) throw new NotFoundError(`mesh ${mesh} does not exist`);
  const of = (kind: ResourceRecord['kind']) => records.filter((r) => r.kind === kind);
  return {
    mesh: meshRecord,
    virtualNodes: of('virtualNode'),
    virtualServices: of('virtualService'),
    virtualRouters: of('virtualRouter'),
    routes: of('route'),
    virtualGateways: of('virtualGateway'),
    gatewayRoutes: of('gatewayRoute'),
  };
}

export class StoreConfigSource implements ConfigSource {
  readonly #store: ResourceStore;
  readonly #options: TranslateOptions | undefined;
  readonly #views: PerMesh<MeshView>;
  /** acmIssuers per mesh, read once per change like the view (not once per proxy). */
  readonly #issuers: PerMesh<Readonly<Record<string, string>>> | undefined;
  readonly #endpoints: PerMesh<Endpoints> | undefined;
  readonly #listeners = new Set<(affected: AffectedPredicate) => void>();
  readonly #unwatchStore: () => void;

  constructor(options: StoreConfigSourceOptions) {
    this.#store = options.store;
    this.#options = options.translateOptions;
    this.#views = new PerMesh((mesh) => this.#store.listMesh(mesh).then((records) => meshViewOf(mesh, records)));
    this.#issuers = options.acmIssuers && new PerMesh(options.acmIssuers);
    const endpoints = options.endpoints;
    this.#endpoints = endpoints && new PerMesh(async (mesh) => endpointsByNode(await this.view(mesh), await endpoints(mesh)));
    this.#unwatchStore = this.#store.watch((change) => this.meshChanged(change.record.mesh));
  }

  /** The cached view of a mesh, read from the store when there is none. */
  view(mesh: string): Promise<MeshView> {
    return this.#views.get(mesh);
  }

  async configFor(proxy: ProxyIdentity, placement?: PlacementOptions): Promise<EnvoyConfig> {
    const [view, acmIssuers, endpoints] = await Promise.all([this.view(proxy.mesh), this.#issuers?.get(proxy.mesh), this.#endpoints?.get(proxy.mesh)]);
    const options = { ...this.#options, ...placement };
    return translate({
      view, proxy: { kind: proxy.kind, name: proxy.name }, endpoints: endpoints ?? {},
      ...(Object.keys(options).length > 0 ? { options } : {}), ...(acmIssuers ? { acmIssuers } : {}),
    });
  }

  watch = (listener: (affected: AffectedPredicate) => void): (() => void) => {
    const entry = (a: AffectedPredicate) => listener(a);
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  };

  /** Drops the cached view and tells the watchers that every proxy of the mesh may be affected. */
  meshChanged(mesh: string): void {
    this.#views.forget(mesh);
    this.#issuers?.forget(mesh);
    this.#endpoints?.forget(mesh);
    this.#notify(mesh);
  }

  /** The mesh's registered instances changed: re-read them (the view stays) and re-translate its proxies. */
  endpointsChanged(mesh: string): void {
    this.#endpoints?.forget(mesh);
    this.#notify(mesh);
  }

  #notify(mesh: string): void {
    const affected: AffectedPredicate = (p) => p.mesh === mesh;
    for (const l of [...this.#listeners]) l(affected);
  }

  /** Stops following the store. */
  close(): void {
    this.#unwatchStore();
    this.#listeners.clear();
    this.#views.clear();
    this.#issuers?.clear();
    this.#endpoints?.clear();
  }
}
