// What accepted clusters and listeners make a proxy fetch next, as Envoy does: the load assignments of EDS
// clusters, the route configurations listeners name over RDS, and the secrets named with an SDS config
// (a secret referenced by name only, without sdsConfig, is provided locally: the proxy's own SVID).
type Json = Record<string, unknown>;

function walk(value: unknown, visit: (o: Json) => void): void {
  if (Array.isArray(value)) {
    for (const v of value) walk(v, visit);
  } else if (value !== null && typeof value === 'object') {
    visit(value as Json);
    for (const v of Object.values(value)) walk(v, visit);
  }
}

export interface References {
  readonly clusterLoadAssignments: string[];
  readonly routeConfigurations: string[];
  readonly secrets: string[];
}

/** Sorted, de-duplicated names. */
export function resourceReferences(clusters: ReadonlyMap<string, Json>, listeners: ReadonlyMap<string, Json>): References {
  const eds = new Set<string>();
  for (const c of clusters.values()) {
    if (c.type !== 'EDS') continue;
    const service = (c.edsClusterConfig as Json | undefined)?.serviceName;
    eds.add(typeof service === 'string' && service ? service : String(c.name));
  }
  const rds = new Set<string>();
  const sds = new Set<string>();
  walk([...listeners.values()], (o) => {
    const rdsConfig = o.rds as Json | undefined;
    if (rdsConfig && typeof rdsConfig.routeConfigName === 'string') rds.add(rdsConfig.routeConfigName);
  });
  walk([...clusters.values(), ...listeners.values()], (o) => {
    if (typeof o.name === 'string' && o.sdsConfig !== undefined && o.sdsConfig !== null) sds.add(o.name);
  });
  const sorted = (s: Set<string>) => [...s].sort();
  return { clusterLoadAssignments: sorted(eds), routeConfigurations: sorted(rds), secrets: sorted(sds) };
}
