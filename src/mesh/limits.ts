// Service quotas. Defaults are App Mesh's last published ones (adjustable there too), so scripts written
// against App Mesh meet the same limits; `keymesh server --limit name=value` raises them.
import { ConfigError } from '../errors/index.ts';

export interface Limits {
  meshes: number;
  virtualServicesPerMesh: number;
  virtualNodesPerMesh: number;
  virtualRoutersPerMesh: number;
  virtualGatewaysPerMesh: number;
  routesPerVirtualRouter: number;
  gatewayRoutesPerVirtualGateway: number;
  backendsPerVirtualNode: number;
  tagsPerResource: number;
}

export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  meshes: 15,
  virtualServicesPerMesh: 200,
  virtualNodesPerMesh: 200,
  virtualRoutersPerMesh: 200,
  virtualGatewaysPerMesh: 200,
  routesPerVirtualRouter: 50,
  gatewayRoutesPerVirtualGateway: 50,
  backendsPerVirtualNode: 50,
  tagsPerResource: 50,
});

/** Applies `name=value` overrides; unknown names and non-positive values are configuration errors. */
export function parseLimits(overrides: readonly string[]): Limits {
  const limits: Limits = { ...DEFAULT_LIMITS };
  for (const item of overrides) {
    const m = /^([A-Za-z]+)=(\d+)$/.exec(item);
    if (!m) throw new ConfigError(`--limit ${item}: expected name=value, e.g. meshes=100`);
    const [, name, value] = m as unknown as [string, keyof Limits, string];
    if (!(name in limits)) {
      throw new ConfigError(`--limit ${item}: unknown limit "${name}"; known: ${Object.keys(limits).join(', ')}`);
    }
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError(`--limit ${item}: value must be a positive integer`);
    limits[name] = n;
  }
  return Object.freeze(limits);
}
