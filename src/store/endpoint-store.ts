// Persistence for the endpoint registry (src/discovery): the instances of virtual nodes, the role Cloud Map
// plays for App Mesh. Backends only persist; leases and events live in the registry. Registrations are kept
// across control-plane restarts so that a restarted control plane does not tell proxies that every instance
// vanished before their sidecars have had time to reconnect.
//
// Times are milliseconds since the epoch.

/** `proxy`: registered by a connected sidecar, held by a lease. `static`: registered by an operator, kept until removed. */
export type EndpointSource = 'proxy' | 'static';

export interface EndpointRecord {
  readonly mesh: string;
  readonly virtualNode: string;
  /** Unique within (mesh, virtualNode). A proxy's default is `<address>:<port>`. */
  readonly instance: string;
  /** The IP address clients connect to (the sidecar's ingress listener). */
  readonly address: string;
  readonly port: number;
  /** Further listener ports this instance serves (translate's Endpoint.ports); usually empty. */
  readonly ports: readonly number[];
  readonly source: EndpointSource;
  readonly registeredAt: number;
  /** When the registration lapses: null while its proxy is connected, and always for a static one. */
  readonly expiresAt: number | null;
}

export interface EndpointKey {
  readonly mesh: string;
  readonly virtualNode: string;
  readonly instance: string;
}

export interface EndpointStore {
  /** Inserts or replaces the record with the same key. */
  putEndpoint(record: EndpointRecord): Promise<void>;
  getEndpoint(key: EndpointKey): Promise<EndpointRecord | undefined>;
  /** Sets the lease's end; false when there is no such record. */
  setEndpointExpiry(key: EndpointKey, expiresAt: number | null): Promise<boolean>;
  /** The removed record, or undefined when there was none. */
  deleteEndpoint(key: EndpointKey): Promise<EndpointRecord | undefined>;
  /** Ordered by mesh, virtual node, instance. */
  listEndpoints(filter?: { mesh?: string }): Promise<EndpointRecord[]>;
  /** Removes the records whose lease ended at or before `now` and returns them. */
  deleteExpiredEndpoints(now: number): Promise<EndpointRecord[]>;
  /**
   * Gives every proxy registration without a lease one that ends at `expiresAt` (at start-up: their proxies
   * were connected to a control plane that is gone) and returns how many.
   */
  leaseConnectedEndpoints(expiresAt: number): Promise<number>;
}

export function endpointKeyText(k: EndpointKey): string {
  return `${k.mesh}/${k.virtualNode}/${k.instance}`;
}

export function compareEndpoints(a: EndpointKey, b: EndpointKey): number {
  return a.mesh < b.mesh ? -1 : a.mesh > b.mesh ? 1
    : a.virtualNode < b.virtualNode ? -1 : a.virtualNode > b.virtualNode ? 1
      : a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0;
}
