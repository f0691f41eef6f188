// The xDS server's ConfigSource over the App Mesh store: a proxy's configuration is `translate()` over the
// MeshView of its mesh.
//
// - The MeshView of a mesh is read once (store.listMesh) and cached until the store reports a change in that
//   mesh; the next configFor rebuilds it.
// - Affected proxies: a committed change in mesh M affects every proxy of mesh M. This is deliberately coarse
//   and always correct (translation of one proxy can read any resource of its mesh: backends, routers, routes,
//   gateway routes, other nodes' listeners and TLS); the xDS server only pushes when a proxy's resources really
//   changed (versions are content hashes), so the cost is one translation per proxy of the mesh per change.
// - Endpoints: no registry yet, so every translation gets an empty map (DNS service discovery → STRICT_DNS
//   clusters on the node's hostname).
import { NotFoundError } from '../errors/index.ts';
import type { ResourceRecord } from '../model/resource.ts';
import type { ResourceStore } from '../store/store.ts';
import type { EnvoyConfig, MeshView, TranslateOptions } from '../translate/api.ts';
import { translate } from '../translate/translate.ts';
import type { AffectedPredicate, ConfigSource, ProxyIdentity } from './sources.ts';

export interface StoreConfigSourceOptions {
  readonly store: ResourceStore;
  readonly translateOptions?: TranslateOptions;
  /**
   * The issuing CA of each managed certificate of a mesh (certificate ARN → CA ARN), so that a client with no
   * client policy validates an ACM server certificate against its CA, as App Mesh does.
   */
  readonly acmIssuers?: (mesh: string) => Promise<Readonly<Record<string, string>>>;
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
  readonly #acmIssuers: StoreConfigSourceOptions['acmIssuers'];
  readonly #views = new Map<string, Promise<MeshView>>();
  /** acmIssuers per mesh, read once per change like the view (not once per proxy). */
  readonly #issuers = new Map<string, Promise<Readonly<Record<string, string>>>>();
  readonly #listeners = new Set<(affected: AffectedPredicate) => void>();
  readonly #unwatchStore: () => void;

  constructor(options: StoreConfigSourceOptions) {
    this.#store = options.store;
    this.#options = options.translateOptions;
    this.#acmIssuers = options.acmIssuers;
    this.#unwatchStore = this.#store.watch((change) => this.meshChanged(change.record.mesh));
  }

  /** The cached view of a mesh, read from the store when there is none. */
  view(mesh: string): Promise<MeshView> {
    let view = this.#views.get(mesh);
    if (!view) {
      view = this.#store.listMesh(mesh).then((records) => meshViewOf(mesh, records));
      this.#views.set(mesh, view);
      // A failed read is not cached.
      view.catch(() => {
        if (this.#views.get(mesh) === view) this.#views.delete(mesh);
      });
    }
    return view;
  }

  async configFor(proxy: ProxyIdentity): Promise<EnvoyConfig> {
    const [view, acmIssuers] = await Promise.all([this.view(proxy.mesh), this.#issuersOf(proxy.mesh)]);
    return translate({
      view, proxy: { kind: proxy.kind, name: proxy.name }, endpoints: {},
      ...(this.#options ? { options: this.#options } : {}), ...(acmIssuers ? { acmIssuers } : {}),
    });
  }

  #issuersOf(mesh: string): Promise<Readonly<Record<string, string>>> | undefined {
    const read = this.#acmIssuers;
    if (!read) return undefined;
    let issuers = this.#issuers.get(mesh);
    if (!issuers) {
      issuers = read(mesh);
      this.#issuers.set(mesh, issuers);
      issuers.catch(() => {
        if (this.#issuers.get(mesh) === issuers) this.#issuers.delete(mesh);
      });
    }
    return issuers;
  }

  watch = (listener: (affected: AffectedPredicate) => void): (() => void) => {
    const entry = (a: AffectedPredicate) => listener(a);
    this.#listeners.add(entry);
    return () => void this.#listeners.delete(entry);
  };

  /** Drops the cached view and tells the watchers that every proxy of the mesh may be affected. */
  meshChanged(mesh: string): void {
    this.#views.delete(mesh);
    this.#issuers.delete(mesh);
    const affected: AffectedPredicate = (p) => p.mesh === mesh;
    for (const l of [...this.#listeners]) l(affected);
  }

  /** Stops following the store. */
  close(): void {
    this.#unwatchStore();
    this.#listeners.clear();
    this.#views.clear();
    this.#issuers.clear();
  }
}
