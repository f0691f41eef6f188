// Builds MeshView fixtures from specs, as ResourceRecord-like objects, plus golden-file helpers.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import type { KindName } from '../model/kinds.ts';
import type { JsonObject } from '../model/json.ts';
import type { ResourceRecord } from '../model/resource.ts';
import type { EnvoyConfig, MeshView } from './api.ts';

export function record(kind: KindName, mesh: string, name: string, spec: object, parent = ''): ResourceRecord {
  return {
    kind, mesh, parent, name,
    spec: structuredClone(spec) as JsonObject,
    tags: [],
    metadata: { arn: `arn:aws:appmesh:us-east-1:000000000000:mesh/${mesh}/${kind}/${name}`, uid: `uid-${name}`, version: 1, createdAt: 0, lastUpdatedAt: 0, meshOwner: '000000000000', resourceOwner: '000000000000' },
    rev: 1,
  };
}

/** A mesh under construction: add resources, then `view()`. */
export class MeshBuilder {
  readonly #mesh: string;
  readonly #meshSpec: object;
  readonly #records: ResourceRecord[] = [];

  constructor(mesh: string, meshSpec: object = {}) {
    this.#mesh = mesh;
    this.#meshSpec = meshSpec;
  }
  node(name: string, spec: object): this { this.#records.push(record('virtualNode', this.#mesh, name, spec)); return this; }
  service(name: string, spec: object): this { this.#records.push(record('virtualService', this.#mesh, name, spec)); return this; }
  router(name: string, spec: object): this { this.#records.push(record('virtualRouter', this.#mesh, name, spec)); return this; }
  route(router: string, name: string, spec: object): this { this.#records.push(record('route', this.#mesh, name, spec, router)); return this; }
  gateway(name: string, spec: object): this { this.#records.push(record('virtualGateway', this.#mesh, name, spec)); return this; }
  gatewayRoute(gateway: string, name: string, spec: object): this { this.#records.push(record('gatewayRoute', this.#mesh, name, spec, gateway)); return this; }

  view(order: (rs: ResourceRecord[]) => ResourceRecord[] = (rs) => rs): MeshView {
    const rs = order([...this.#records]);
    const of = (k: KindName) => rs.filter((r) => r.kind === k);
    return {
      mesh: record('mesh', this.#mesh, this.#mesh, this.#meshSpec),
      virtualNodes: of('virtualNode'), virtualServices: of('virtualService'), virtualRouters: of('virtualRouter'),
      routes: of('route'), virtualGateways: of('virtualGateway'), gatewayRoutes: of('gatewayRoute'),
    };
  }
}

/** `roundTrip` and `TYPE_URLS` of src/envoy/protos.ts (passed in: src/translate may not import src/envoy). */
export interface Codec {
  roundTrip(typeUrl: string, resource: object): Record<string, unknown>;
  readonly TYPE_URLS: { readonly listener: string; readonly routeConfiguration: string; readonly cluster: string; readonly clusterLoadAssignment: string };
}

/** Asserts that every resource survives protobuf encoding unchanged (every field is one Envoy knows). */
export function assertRoundTrips(config: EnvoyConfig, { roundTrip, TYPE_URLS }: Codec): void {
  const check = (typeUrl: string, list: readonly JsonObject[]) => {
    for (const r of list) assert.deepEqual(roundTrip(typeUrl, r), r, `${String(r.name ?? r.clusterName)} does not round-trip`);
  };
  check(TYPE_URLS.listener, config.listeners);
  check(TYPE_URLS.routeConfiguration, config.routeConfigurations);
  check(TYPE_URLS.cluster, config.clusters);
  check(TYPE_URLS.clusterLoadAssignment, config.clusterLoadAssignments);
}

/**
 * Compares with the golden file `golden/<name>.json`. The file is only (re)written when `update` is true (the
 * tests pass KEYMESH_UPDATE_GOLDEN=1); a missing golden file otherwise fails the test.
 */
export function assertGolden(name: string, config: EnvoyConfig, update: boolean): void {
  const url = new URL(`./golden/${name}.json`, import.meta.url);
  const text = `${JSON.stringify(config, null, 2)}\n`;
  if (update) {
    writeFileSync(url, text);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(url, 'utf8');
  } catch {
    assert.fail(`golden file golden/${name}.json is missing; run with KEYMESH_UPDATE_GOLDEN=1 to create it`);
  }
  assert.deepEqual(JSON.parse(text), JSON.parse(expected), `golden/${name}.json differs; review, then KEYMESH_UPDATE_GOLDEN=1 to update`);
}
