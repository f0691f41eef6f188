// Property-based tests of the translation: random VALID meshes (mesh-generator.ts: every spec passes the
// validators the API applies), every proxy of each, and invariants that must hold for all of them. Bounded
// and deterministic: RUNS meshes from fixed seeds. A failure names the seed and proxy; replay that one mesh with
//   KEYMESH_PROPERTY_SEED=<seed> node --test src/translate/properties.test.ts
// (KEYMESH_PROPERTY_RUNS changes how many meshes are tried).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as codec from '../envoy/protos.ts';
import type { JsonObject } from '../model/json.ts';
import { buildSnapshot, canonicalJson, firstDifference } from '../xds/snapshot.ts';
import type { EnvoyConfig, TranslateInput, ProxyRef } from './api.ts';
import { UNLIMITED } from './clusters.ts';
import { MAX_UINT32, T } from './envoy.ts';
import { generateMesh, type GeneratedMesh, meshView, meshViolations, reordered, Rng } from './mesh-generator.ts';
import { egressClusterName, ingressClusterName, ingressRouteConfigName, selfRedirectClusterName } from './names.ts';
import type { ClientPolicy, ConnectionPool, GatewayRouteSpec, ListenerCertificate, ListenerTls, NodeListener, RouteSpec, VirtualGatewaySpec, VirtualNodeSpec, VirtualServiceSpec } from './spec.ts';
import { assertRoundTrips } from './test-fixtures.ts';
import { translate } from './translate.ts';

const RUNS = Number(process.env.KEYMESH_PROPERTY_RUNS ?? 200);
const ONE_SEED = process.env.KEYMESH_PROPERTY_SEED;
const SEEDS = ONE_SEED !== undefined ? [Number(ONE_SEED)] : Array.from({ length: RUNS }, (_, i) => (0x6b6d7368 + Math.imul(i, 0x9e3779b1)) >>> 0);

interface Case {
  readonly mesh: GeneratedMesh;
  readonly proxy: ProxyRef;
  readonly input: TranslateInput;
  /** Seed and proxy, for failure messages. */
  readonly where: string;
  readonly config?: EnvoyConfig;
  readonly error?: unknown;
}

/** Freezes a value deeply: translate must not change its input (the xDS server shares one MeshView per mesh). */
function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

const meshes = SEEDS.map((seed) => generateMesh(seed));
const cases: Case[] = meshes.flatMap((mesh) => {
  // One (frozen) view per mesh, shared by all its proxies, as the xDS server does.
  const view = deepFreeze(meshView(mesh.mesh, mesh.records));
  return mesh.proxies.map((proxy): Case => {
    const input: TranslateInput = deepFreeze({ view, proxy, endpoints: mesh.endpoints, ...(mesh.acmIssuers ? { acmIssuers: mesh.acmIssuers } : {}), ...(mesh.options ? { options: mesh.options } : {}) });
    const where = `seed ${mesh.seed} (KEYMESH_PROPERTY_SEED=${mesh.seed}), ${proxy.kind} ${proxy.name}`;
    try {
      return { mesh, proxy, input, where, config: translate(input) };
    } catch (error) {
      return { mesh, proxy, input, where, error };
    }
  });
});
/** The cases that translated (the first property reports the others). */
const translated = cases.filter((c): c is Case & { config: EnvoyConfig } => c.config !== undefined);

// ---------------------------------------------------------------------------------------------------------
// Helpers over the generated input and the emitted resources.

type Obj = Record<string, any>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every object in `value` (depth first), with its path. */
function* objects(value: unknown, path = ''): Generator<[Obj, string]> {
  if (Array.isArray(value)) {
    for (const [i, v] of value.entries()) yield* objects(v, `${path}[${i}]`);
  } else if (isObj(value)) {
    yield [value, path];
    for (const [k, v] of Object.entries(value)) yield* objects(v, path ? `${path}.${k}` : k);
  }
}

/** Every object and array in `value` with its path, depth first, repeating none: the first one seen twice fails. */
function assertTree(value: unknown, seen: Set<object>, path: string): void {
  if (typeof value !== 'object' || value === null) return;
  assert.ok(!seen.has(value), `${path}: an object that is also elsewhere in the output`);
  seen.add(value);
  for (const [k, v] of Object.entries(value)) assertTree(v, seen, `${path}.${k}`);
}

/** Every object and array in `value`, by identity. */
function identities(value: unknown, out = new Set<object>()): Set<object> {
  if (typeof value === 'object' && value !== null && !out.has(value)) {
    out.add(value);
    for (const v of Object.values(value)) identities(v, out);
  }
  return out;
}

function allResources(c: EnvoyConfig): [string, JsonObject][] {
  return [
    ...c.listeners.map((r): [string, JsonObject] => [`listener ${String(r.name)}`, r]),
    ...c.routeConfigurations.map((r): [string, JsonObject] => [`route configuration ${String(r.name)}`, r]),
    ...c.clusters.map((r): [string, JsonObject] => [`cluster ${String(r.name)}`, r]),
    ...c.clusterLoadAssignments.map((r): [string, JsonObject] => [`assignment ${String(r.clusterName)}`, r]),
  ];
}

function* allObjects(c: EnvoyConfig): Generator<[Obj, string]> {
  for (const [what, r] of allResources(c)) for (const [o, path] of objects(r)) yield [o, `${what}: ${path || '(top)'}`];
}

function specOf<S>(m: GeneratedMesh, kind: string, name: string, parent = ''): S | undefined {
  return m.records.find((r) => r.kind === kind && r.name === name && r.parent === parent)?.spec as S | undefined;
}
const nodeSpec = (m: GeneratedMesh, name: string) => specOf<VirtualNodeSpec>(m, 'virtualNode', name);
const gatewaySpec = (m: GeneratedMesh, name: string) => specOf<VirtualGatewaySpec>(m, 'virtualGateway', name);
const nodes = (m: GeneratedMesh) => m.records.filter((r) => r.kind === 'virtualNode').map((r) => ({ name: r.name, spec: r.spec as unknown as VirtualNodeSpec }));

const addressOf = (c: Case) => c.input.options?.listenAddress ?? '0.0.0.0';
const ingressPortOf = (c: Case) => c.input.options?.ingressPort ?? 15000;
const egressPortOf = (c: Case) => c.input.options?.egressPort ?? 15001;
/**
 * Where the proxy's egress listener is: the egress port, except on a gateway with a listener there: then the
 * next port up that no gateway listener uses (none of the generated ports is near 65535).
 */
function egressListenerPortOf(c: Case): number {
  if (c.proxy.kind === 'virtualNode') return egressPortOf(c);
  const used = new Set(gatewaySpec(c.mesh, c.proxy.name)!.listeners.map((l) => l.portMapping.port));
  let port = egressPortOf(c);
  while (used.has(port)) port++;
  return port;
}
const meshName = (c: Case) => c.mesh.mesh.name;

const chainsOf = (l: JsonObject) => (l.filterChains ?? []) as Obj[];
const socketOf = (l: JsonObject) => (l.address as Obj).socketAddress as Obj;
const listenerFilterNames = (l: JsonObject) => ((l.listenerFilters ?? []) as Obj[]).map((f) => String(f.name));

/** The listeners of the proxy's own spec (a node's or a gateway's), with their TLS. */
function proxyListeners(c: Case): (NodeListener | VirtualGatewaySpec['listeners'][number])[] {
  return c.proxy.kind === 'virtualNode' ? nodeSpec(c.mesh, c.proxy.name)?.listeners ?? [] : gatewaySpec(c.mesh, c.proxy.name)?.listeners ?? [];
}

/** The client policies of the proxy's own spec. */
function ownPolicies(c: Case): ClientPolicy[] {
  if (c.proxy.kind === 'virtualGateway') return [gatewaySpec(c.mesh, c.proxy.name)?.backendDefaults?.clientPolicy].filter((p): p is ClientPolicy => p?.tls !== undefined);
  const spec = nodeSpec(c.mesh, c.proxy.name);
  return [spec?.backendDefaults?.clientPolicy, ...(spec?.backends ?? []).map((b) => b.virtualService?.clientPolicy)].filter((p): p is ClientPolicy => p?.tls !== undefined);
}

/** What the proxy may present as its own certificate: its listeners' and its client policies' certificates. */
function ownCertificates(c: Case): { chains: Set<string>; keys: Set<string>; names: Set<string> } {
  const certs: ListenerCertificate[] = [
    ...proxyListeners(c).map((l) => l.tls?.certificate),
    ...ownPolicies(c).map((p) => p.tls?.certificate),
  ].filter((x): x is ListenerCertificate => x !== undefined);
  return {
    chains: new Set(certs.flatMap((x) => (x.file ? [x.file.certificateChain] : []))),
    keys: new Set(certs.flatMap((x) => (x.file ? [x.file.privateKey] : []))),
    names: new Set(certs.flatMap((x) => (x.sds ? [x.sds.secretName] : x.acm ? [x.acm.certificateArn] : []))),
  };
}

function tlsContexts(c: EnvoyConfig): [Obj, string][] {
  return [...allObjects(c)].filter(([o]) => o['@type'] === T.downstreamTls || o['@type'] === T.upstreamTls);
}

/** Durations in the emitted resources, by the field names that hold them. */
const DURATION_FIELDS = new Set(['timeout', 'idleTimeout', 'perTryTimeout', 'interval', 'baseEjectionTime', 'connectTimeout']);

/** Clusters a listener or route configuration sends traffic to. */
function referencedClusters(c: EnvoyConfig): Set<string> {
  const out = new Set<string>();
  for (const [o] of allObjects({ ...c, clusters: [], clusterLoadAssignments: [] })) {
    if (o['@type'] === T.tcpProxy && typeof o.cluster === 'string') out.add(o.cluster);
    if (o['@type'] === T.tcpProxy && o.weightedClusters) for (const w of o.weightedClusters.clusters) out.add(w.name);
  }
  for (const rc of c.routeConfigurations) {
    for (const vh of (rc.virtualHosts ?? []) as Obj[]) {
      for (const r of (vh.routes ?? []) as Obj[]) {
        if (r.route?.cluster) out.add(r.route.cluster);
        for (const w of r.route?.weightedClusters?.clusters ?? []) out.add(w.name);
      }
    }
  }
  return out;
}

/** Runs `check` on every translated case; collects failures (up to 5 shown) so one run reports several seeds. */
function forAll(check: (c: Case & { config: EnvoyConfig }) => void): void {
  const failures: string[] = [];
  for (const c of translated) {
    try {
      check(c);
    } catch (e) {
      failures.push(`${c.where}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  assert.equal(failures.length, 0, `${failures.length} of ${translated.length} proxies fail:\n${failures.slice(0, 5).join('\n---\n')}`);
}

// ---------------------------------------------------------------------------------------------------------
// The generator itself.

test('generator: meshes are App Mesh-valid, varied, and reproducible from their seed', () => {
  const proxies = cases.length;
  const rejected = meshes.reduce((n, m) => n + m.rejected.length, 0);
  // Rejected candidates are replaced, but a generator that mostly misses the API's rules explores little.
  assert.ok(rejected <= meshes.length / 10, `${rejected} candidates rejected, e.g. ${meshes.flatMap((m) => m.rejected).slice(0, 3).join('; ')}`);
  for (const m of meshes) assert.deepEqual(meshViolations(m.mesh, m.records), [], `seed ${m.seed}`);
  // The validators are really applied: a broken spec is caught.
  const broken = meshes.find((m) => m.records.some((r) => r.kind === 'virtualNode'))!;
  const node = broken.records.find((r) => r.kind === 'virtualNode')!;
  assert.notDeepEqual(meshViolations(broken.mesh, [...broken.records.filter((r) => r !== node), { ...node, spec: { ...node.spec, listeners: [{ portMapping: { port: 0, protocol: 'udp' } }] } }]), []);
  assert.deepEqual(generateMesh(SEEDS[0]!), meshes[0], 'the same seed gives the same mesh');
  if (ONE_SEED === undefined) {
    // Enough of everything to mean something (200 meshes give about a thousand proxies).
    const count = (kind: string) => meshes.reduce((n, m) => n + m.records.filter((r) => r.kind === kind).length, 0);
    assert.ok(proxies >= RUNS * 2, `only ${proxies} proxies`);
    for (const kind of ['virtualNode', 'virtualService', 'virtualRouter', 'route', 'virtualGateway', 'gatewayRoute']) assert.ok(count(kind) >= RUNS / 4, `only ${count(kind)} ${kind}s`);
  }
});

// ---------------------------------------------------------------------------------------------------------
// Properties.

test('translate: every proxy of every valid mesh translates, without changing its (frozen) input', () => {
  const failed = cases.filter((c) => c.error !== undefined);
  assert.equal(failed.length, 0, failed.slice(0, 5).map((c) => `${c.where}: ${c.error instanceof Error ? c.error.stack : String(c.error)}`).join('\n'));
});

test('snapshot: the xDS server publishes every configuration (no dangling cluster or RDS names, every resource encodes)', () => {
  forAll((c) => {
    const built = buildSnapshot(c.config);
    assert.ok(built.ok, built.ok ? '' : built.problems.join('; '));
  });
});

test('protos: every resource round-trips through the Envoy protos unchanged', () => {
  forAll((c) => assertRoundTrips(c.config, codec));
});

test('output: plain JSON trees (no undefined members, no object shared with the input, another translation or another place), each list sorted by unique name', () => {
  forAll((c) => {
    const json: unknown = JSON.parse(JSON.stringify(c.config));
    assert.ok(firstDifference(json, c.config) === null && canonicalJson(json) === canonicalJson(c.config));
    assert.deepStrictEqual(json, { ...c.config }, 'an undefined member or a non-JSON value');
    const input = identities(c.input);
    // A tree: changing one resource (as a consumer may) changes nothing else of the output.
    const own = new Set<object>();
    for (const [k, v] of Object.entries(c.config)) assertTree(v, own, k);
    for (const o of own) assert.ok(!input.has(o), `${JSON.stringify(o).slice(0, 80)}: an object of the input in the output`);
    // Nothing shared with another translation (no module constant, no cached object): a consumer that changes
    // one output cannot change the next.
    const again = translate(c.input);
    for (const o of identities({ ...again })) assert.ok(!own.has(o), `${JSON.stringify(o).slice(0, 80)}: an object shared by two translations`);
    const lists: [string, readonly JsonObject[], string][] = [
      ['listeners', c.config.listeners, 'name'], ['route configurations', c.config.routeConfigurations, 'name'],
      ['clusters', c.config.clusters, 'name'], ['cluster load assignments', c.config.clusterLoadAssignments, 'clusterName'],
    ];
    for (const [what, list, key] of lists) {
      const names = list.map((r) => r[key]);
      for (const n of names) assert.equal(typeof n, 'string', `${what}: a resource without ${key}`);
      for (let i = 1; i < names.length; i++) assert.ok(String(names[i - 1]) < String(names[i]), `${what}: ${String(names[i - 1])} then ${String(names[i])} (duplicate or unsorted)`);
    }
    const secrets = c.config.secrets.map((s) => `${s.name}\u0000${s.type}`);
    assert.deepEqual(secrets, [...new Set(secrets)].sort(), 'secrets: unique by name and type, sorted');
  });
});

test('TLS: every TLS context, downstream and upstream, requires TLS 1.2 or higher', () => {
  const order = ['TLSv1_0', 'TLSv1_1', 'TLSv1_2', 'TLSv1_3'];
  forAll((c) => {
    for (const [ctx, where] of tlsContexts(c.config)) {
      const params = ctx.commonTlsContext?.tlsParams ?? {};
      const min = order.indexOf(params.tlsMinimumProtocolVersion);
      assert.ok(min >= 2, `${where}: tlsMinimumProtocolVersion ${String(params.tlsMinimumProtocolVersion)}`);
      if (params.tlsMaximumProtocolVersion !== undefined) assert.ok(order.indexOf(params.tlsMaximumProtocolVersion) >= min, `${where}: maximum below minimum`);
    }
  });
});

test('listeners: bind the listen address and the configured ports; ingress iff the node has listeners; no port bound twice', () => {
  forAll((c) => {
    const address = addressOf(c);
    const bound = new Set<string>();
    for (const l of c.config.listeners) {
      const sa = socketOf(l);
      assert.equal(sa.address, address, `${String(l.name)} binds ${String(sa.address)}`);
      assert.equal(sa.ipv4Compat === true, address === '::', `${String(l.name)}: ipv4Compat exactly for ::`);
      const direction = String(l.name).startsWith('lds_egress_') ? 'egress' : 'ingress';
      assert.equal(l.name, `lds_${direction}_${address}_${String(sa.portValue)}`, 'listeners are named by what they bind');
      const key = `${String(sa.address)}:${String(sa.portValue)}`;
      assert.ok(!bound.has(key), `two listeners bind ${key}`);
      bound.add(key);
    }
    const names = c.config.listeners.map((l) => l.name);
    const egress = `lds_egress_${address}_${egressListenerPortOf(c)}`;
    if (c.proxy.kind === 'virtualNode') {
      const hasListeners = (nodeSpec(c.mesh, c.proxy.name)?.listeners ?? []).length > 0;
      assert.deepEqual(names, [egress, ...(hasListeners ? [`lds_ingress_${address}_${ingressPortOf(c)}`] : [])].sort());
    } else {
      const ports = gatewaySpec(c.mesh, c.proxy.name)!.listeners.map((l) => l.portMapping.port);
      // The egress listener exists exactly when a route goes through the self redirect into it.
      const redirects = c.config.clusters.filter((cl) => String(cl.name).includes('_self_redirect_')).map((cl) => String(cl.name));
      const redirected = redirects.length > 0;
      const dial = address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
      for (const n of redirects) {
        assert.ok(referencedClusters(c.config).has(n), `${n} is used by no route`);
        const sa = (c.config.clusters.find((cl) => cl.name === n) as Obj).loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress;
        assert.deepEqual([sa.address, sa.portValue], [dial, egressListenerPortOf(c)], `${n} dials the egress listener`);
      }
      assert.deepEqual(names, [...ports.map((p) => `lds_ingress_${address}_${p}`), ...(redirected ? [egress] : [])].sort());
    }
  });
});

test('determinism: the same input with every list (and object) in another order translates to the same output', () => {
  forAll((c) => {
    const rng = new Rng(c.mesh.seed ^ 0x5eed);
    for (let i = 0; i < 2; i++) {
      const other = reordered(c.mesh, rng);
      const again = translate({ ...c.input, view: other.view, endpoints: other.endpoints, ...(other.acmIssuers ? { acmIssuers: other.acmIssuers } : {}) });
      const diff = firstDifference(c.config, again);
      assert.equal(diff, null, `reordered input changes ${String(diff)}`);
      assert.deepStrictEqual(again, c.config);
    }
  });
});

test('secrets: no key material; a proxy names only its own certificates and key files; every secret it uses is listed', () => {
  forAll((c) => {
    const text = JSON.stringify(c.config);
    assert.ok(!/PRIVATE KEY|BEGIN [A-Z ]*-----/.test(text), 'PEM material in the output');
    const own = ownCertificates(c);
    const referenced = new Set<string>();
    for (const [ctx, where] of tlsContexts(c.config)) {
      for (const [o, path] of objects(ctx)) assert.ok(o.inlineString === undefined && o.inlineBytes === undefined, `${where}.${path}: inline data in a TLS context`);
    }
    for (const [o, where] of allObjects(c.config)) {
      if (o.privateKey !== undefined) {
        assert.deepEqual(Object.keys(o.privateKey), ['filename'], `${where}: a private key that is not a file path`);
        assert.ok(own.keys.has(o.privateKey.filename), `${where}: key file ${String(o.privateKey.filename)} is not this proxy's`);
        assert.ok(own.chains.has(o.certificateChain?.filename), `${where}: certificate ${String(o.certificateChain?.filename)} is not this proxy's`);
      }
      for (const s of (o.tlsCertificateSdsSecretConfigs ?? []) as Obj[]) {
        assert.ok(own.names.has(s.name), `${where}: certificate secret ${String(s.name)} is not this proxy's`);
        referenced.add(`${String(s.name)}\u0000certificate`);
      }
      if (o.validationContextSdsSecretConfig !== undefined) referenced.add(`${String(o.validationContextSdsSecretConfig.name)}\u0000validation`);
    }
    // Every SDS name the resources use is listed (the xDS server serves only listed secrets), and every listed one
    // is used (the proxy may fetch nothing more than it needs).
    const listed = new Set(c.config.secrets.map((s) => `${s.name}\u0000${s.type}`));
    for (const r of referenced) assert.ok(listed.has(r), `secret ${r.replace('\u0000', ' (')}) is used but not listed`);
    for (const l of listed) assert.ok(referenced.has(l), `secret ${l.replace('\u0000', ' (')}) is listed but used by no resource`);
    for (const s of c.config.secrets) {
      assert.equal(s.source, s.name.startsWith('arn:') ? 'acm' : 'sds', `secret ${s.name}`);
      if (s.type === 'certificate') assert.ok(own.names.has(s.name), `certificate secret ${s.name} is not this proxy's`);
    }
  });
});

test('TLS modes: a STRICT listener has only TLS chains, DISABLED only plaintext, PERMISSIVE both; validation requires a client certificate under STRICT only', () => {
  forAll((c) => {
    const address = addressOf(c);
    const own = proxyListeners(c);
    let expected = 0;
    for (const l of own) {
      const { port, protocol } = l.portMapping;
      const envoyListener = c.proxy.kind === 'virtualNode'
        ? c.config.listeners.find((x) => x.name === `lds_ingress_${address}_${ingressPortOf(c)}`)
        : c.config.listeners.find((x) => x.name === `lds_ingress_${address}_${port}`);
      assert.ok(envoyListener, `no Envoy listener for listener ${port}`);
      const chains = chainsOf(envoyListener).filter((ch) => String(ch.name).startsWith(`ingress_${protocol}_${port}_`));
      const secure = chains.filter((ch) => ch.transportSocket !== undefined);
      const plain = chains.filter((ch) => ch.transportSocket === undefined);
      const tls: ListenerTls | undefined = l.tls;
      const mode = tls?.mode ?? 'DISABLED';
      const at = `listener ${port} (${mode})`;
      assert.deepEqual([secure.length, plain.length], mode === 'STRICT' ? [1, 0] : mode === 'DISABLED' ? [0, 1] : [1, 1], `${at}: TLS and plaintext chains`);
      expected += chains.length;
      if (mode === 'PERMISSIVE') {
        assert.equal(secure[0]!.filterChainMatch?.transportProtocol, 'tls', `${at}: the TLS chain matches on transportProtocol`);
        assert.ok(listenerFilterNames(envoyListener).includes('envoy.filters.listener.tls_inspector'), `${at}: PERMISSIVE needs tls_inspector`);
      }
      for (const ch of secure) {
        const ctx = ch.transportSocket.typedConfig as Obj;
        assert.equal(ctx['@type'], T.downstreamTls, at);
        const common = ctx.commonTlsContext as Obj;
        assert.ok(common.tlsCertificates || common.tlsCertificateSdsSecretConfigs, `${at}: no certificate`);
        if (tls?.validation) {
          // PERMISSIVE asks for a certificate and checks it, but admits TLS without one as it admits plaintext.
          assert.deepEqual(ctx.requireClientCertificate, mode === 'STRICT' ? { value: true } : undefined, `${at}: a client certificate is required exactly under STRICT`);
          assert.ok(common.validationContext || common.validationContextSdsSecretConfig || common.combinedValidationContext, `${at}: no validation context`);
          const sans = tls.validation.subjectAlternativeNames?.match.exact ?? [];
          const matchers = (common.validationContext ?? common.combinedValidationContext?.defaultValidationContext ?? {}).matchTypedSubjectAltNames ?? [];
          assert.deepEqual(matchers.map((m: Obj) => m.matcher.exact), [...new Set(sans)].sort(), `${at}: SANs`);
        } else {
          assert.equal(ctx.requireClientCertificate, undefined, `${at}: no validation, no client certificate required`);
        }
      }
    }
    // Every ingress chain belongs to one of the proxy's listeners.
    const ingressChains = c.config.listeners.filter((l) => String(l.name).startsWith('lds_ingress_')).flatMap(chainsOf);
    assert.equal(ingressChains.length, expected, 'ingress chains that no listener accounts for');
  });
});

test('clusters: every referenced cluster exists; every cluster has circuit breakers (App Mesh limits, from the pool when one is set)', () => {
  forAll((c) => {
    const names = new Set(c.config.clusters.map((cl) => String(cl.name)));
    for (const n of referencedClusters(c.config)) assert.ok(names.has(n), `cluster ${n} is referenced but missing`);
    for (const cl of c.config.clusters) {
      const t = cl.circuitBreakers as Obj | undefined;
      assert.ok(t && t.thresholds.length === 1, `${String(cl.name)}: no circuit breakers`);
      for (const k of ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries']) {
        const v = t.thresholds[0][k]?.value;
        assert.ok(Number.isInteger(v) && v >= 1 && v <= UNLIMITED, `${String(cl.name)}: ${k} ${String(v)}`);
      }
    }
    // The local application clusters of a node: one per listener, its limits from the listener's pool.
    if (c.proxy.kind === 'virtualNode') {
      for (const l of nodeSpec(c.mesh, c.proxy.name)?.listeners ?? []) {
        const name = ingressClusterName(meshName(c), c.proxy.name, l.portMapping.protocol, l.portMapping.port);
        const cl = c.config.clusters.find((x) => x.name === name) as Obj | undefined;
        assert.ok(cl, `no ${name}`);
        assert.deepEqual(cl.circuitBreakers.thresholds[0], expectedThresholds(l.connectionPool), `${name}: circuit breakers`);
        assert.equal(cl.healthChecks !== undefined, l.healthCheck !== undefined, `${name}: health checks iff the listener has one`);
        assert.equal(cl.outlierDetection, undefined, `${name}: outlier detection belongs to the clients' clusters`);
        const sa = cl.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress;
        assert.deepEqual([sa.address, sa.portValue], [c.input.options?.appAddress ?? '127.0.0.1', l.portMapping.port], `${name}: the application's address`);
      }
    }
  });
});

function expectedThresholds(pool: ConnectionPool | undefined): Obj {
  const v = (n: number | undefined) => ({ value: n ?? UNLIMITED });
  return {
    maxConnections: v(pool?.http?.maxConnections ?? pool?.tcp?.maxConnections),
    maxPendingRequests: v(pool?.http?.maxPendingRequests),
    maxRequests: v(pool?.http2?.maxRequests ?? pool?.grpc?.maxRequests),
    maxRetries: v(undefined),
  };
}

test('Envoy acceptance: unique chain names and matches, listener filters for what chains match on, unique virtual hosts, valid weights and durations', () => {
  forAll((c) => {
    for (const l of c.config.listeners) {
      const chains = chainsOf(l);
      const chainNames = chains.map((ch) => String(ch.name));
      assert.equal(new Set(chainNames).size, chainNames.length, `${String(l.name)}: duplicate filter chain names ${chainNames.join(', ')}`);
      const matches = chains.map((ch) => canonicalJson(ch.filterChainMatch ?? {}));
      assert.equal(new Set(matches).size, matches.length, `${String(l.name)}: two filter chains with the same match (Envoy rejects the listener)`);
      const filters = listenerFilterNames(l);
      const needs = (field: string) => chains.some((ch) => ch.filterChainMatch?.[field] !== undefined);
      if (needs('transportProtocol') || needs('serverNames')) assert.ok(filters.includes('envoy.filters.listener.tls_inspector'), `${String(l.name)}: matches on TLS without tls_inspector`);
      if (needs('applicationProtocols')) assert.ok(filters.includes('envoy.filters.listener.http_inspector') || filters.includes('envoy.filters.listener.tls_inspector'), `${String(l.name)}: matches on ALPN without an inspector`);
      if (needs('destinationPort')) assert.ok(filters.includes('envoy.filters.listener.original_dst'), `${String(l.name)}: matches on the redirected port without original_dst`);
      for (const ch of chains) assert.equal((ch.filters as Obj[]).length, 1, `${String(l.name)}/${String(ch.name)}: one network filter`);
    }
    for (const rc of c.config.routeConfigurations) {
      const hosts = (rc.virtualHosts ?? []) as Obj[];
      const hostNames = hosts.map((h) => String(h.name));
      assert.equal(new Set(hostNames).size, hostNames.length, `${String(rc.name)}: duplicate virtual host names`);
      // Envoy compares domains lower-cased.
      const domains = hosts.flatMap((h) => (h.domains as string[]).map((d) => d.toLowerCase()));
      assert.equal(new Set(domains).size, domains.length, `${String(rc.name)}: a domain twice (Envoy rejects the route configuration): ${domains.join(', ')}`);
      assert.ok(domains.filter((d) => d === '*').length <= 1, `${String(rc.name)}: several '*' hosts`);
      for (const h of hosts) {
        assert.ok((h.domains as string[]).length > 0, `${String(rc.name)}/${String(h.name)}: no domains`);
        for (const r of (h.routes ?? []) as Obj[]) {
          const at = `${String(rc.name)}/${String(h.name)}/${String(r.name)}`;
          assert.ok(r.route, `${at}: not a route action`);
          assert.equal(['cluster', 'weightedClusters'].filter((k) => r.route[k] !== undefined).length, 1, `${at}: one cluster specifier`);
          assert.ok(r.route.timeout, `${at}: every route has a timeout (App Mesh's 15 s default)`);
          if (r.route.weightedClusters) {
            const ws = r.route.weightedClusters.clusters as Obj[];
            const sum = ws.reduce((n, w) => n + (w.weight?.value ?? 0), 0);
            assert.ok(sum > 0 && sum <= MAX_UINT32, `${at}: weights sum to ${sum} (Envoy wants 1 to 2^32 - 1)`);
          }
        }
      }
    }
    for (const [o, where] of allObjects(c.config)) {
      for (const [k, v] of Object.entries(o)) {
        if (!DURATION_FIELDS.has(k) || !isObj(v) || v.seconds === undefined) continue;
        const s = Number(v.seconds);
        // Envoy rejects negative durations and any above 9223372035 s (its own bound, below protobuf's).
        assert.ok(Number.isInteger(s) && s >= 0 && s <= 9223372035 && Number.isInteger(v.nanos) && v.nanos >= 0 && v.nanos < 1e9, `${where}.${k}: not a Duration Envoy takes ${JSON.stringify(v)}`);
      }
      // PGV rules: outlier detection sweeps and ejections, health check timeouts and intervals are > 0.
      const positive = (d: Obj | undefined) => d === undefined || Number(d.seconds) > 0 || d.nanos > 0;
      if (o.consecutive_5xx !== undefined) assert.ok(positive(o.interval) && positive(o.baseEjectionTime), `${where}: outlier detection durations must be > 0`);
      if (o.healthyThreshold !== undefined) assert.ok(positive(o.interval) && positive(o.timeout), `${where}: health check durations must be > 0`);
      // tcp_proxy: every cluster weight is a uint32 >= 1 (Envoy's PGV rule), so the total is > 0 too.
      if (o['@type'] === T.tcpProxy && o.weightedClusters) {
        for (const w of o.weightedClusters.clusters as Obj[]) assert.ok(Number.isInteger(w.weight) && w.weight >= 1 && w.weight <= MAX_UINT32, `${where}: tcp_proxy cluster ${String(w.name)} weight ${String(w.weight)}`);
      }
      // Every wrapper of a number is a UInt32Value here (weights, retries, thresholds, limits, ports): in range.
      if (Object.keys(o).length === 1 && typeof o.value === 'number') assert.ok(Number.isInteger(o.value) && o.value >= 0 && o.value <= MAX_UINT32, `${where}: ${o.value} does not fit a uint32`);
      if (o.httpHealthCheck) assert.ok(typeof o.httpHealthCheck.path === 'string' && o.httpHealthCheck.path.length > 0, `${where}: health check path`);
    }
    for (const cl of c.config.clusters as Obj[]) {
      const at = String(cl.name);
      assert.equal(cl.connectTimeout?.seconds !== undefined, true, `${at}: connect timeout`);
      if (cl.type === 'EDS') {
        assert.equal(cl.loadAssignment, undefined, `${at}: EDS with an inline assignment`);
        assert.deepEqual(cl.edsClusterConfig, { edsConfig: { ads: {}, resourceApiVersion: 'V3' } }, `${at}: EDS over ADS`);
      } else if (cl.type === 'ORIGINAL_DST') {
        assert.equal(cl.lbPolicy, 'CLUSTER_PROVIDED', at);
      } else {
        assert.ok(['STATIC', 'STRICT_DNS', 'LOGICAL_DNS'].includes(cl.type), `${at}: type ${String(cl.type)}`);
        assert.equal(cl.loadAssignment?.clusterName, cl.name, `${at}: inline assignment named like the cluster`);
        const lbs = cl.loadAssignment.endpoints?.flatMap((e: Obj) => e.lbEndpoints) ?? [];
        assert.ok(cl.type !== 'LOGICAL_DNS' || lbs.length === 1, `${at}: LOGICAL_DNS takes exactly one endpoint`);
        assert.ok(lbs.length >= 1, `${at}: no endpoint`);
      }
    }
  });
});

test('references: every route configuration and assignment is used; outside, local and self-redirect clusters are referenced', () => {
  forAll((c) => {
    const rds = new Set<string>();
    for (const [o] of allObjects({ ...c.config, routeConfigurations: [], clusters: [], clusterLoadAssignments: [] })) if (o['@type'] === T.hcm) rds.add(o.rds.routeConfigName);
    for (const rc of c.config.routeConfigurations) assert.ok(rds.has(String(rc.name)), `route configuration ${String(rc.name)} is used by no listener`);
    const eds = new Set(c.config.clusters.filter((cl) => cl.type === 'EDS').map((cl) => String(cl.name)));
    for (const a of c.config.clusterLoadAssignments) assert.ok(eds.has(String(a.clusterName)), `assignment ${String(a.clusterName)} for no EDS cluster`);
    const used = referencedClusters(c.config);
    for (const cl of c.config.clusters) {
      const n = String(cl.name);
      // A backend's cluster may go unused when another tcp backend took its port; every other cluster is used.
      if (!n.startsWith(`cds_egress_${meshName(c)}_`) || n.endsWith('_passthrough') || n.endsWith('_amazonaws')) assert.ok(used.has(n), `cluster ${n} is used by nothing`);
    }
  });
});

test('endpoints: EDS clusters hold exactly the registered instances serving that listener; DNS clusters only without any', () => {
  forAll((c) => {
    for (const node of nodes(c.mesh)) {
      const listeners = node.spec.listeners ?? [];
      const registered = Object.hasOwn(c.mesh.endpoints, node.name) ? c.mesh.endpoints[node.name]! : [];
      for (const l of listeners) {
        const name = egressClusterName(meshName(c), node.name, l.portMapping.protocol, l.portMapping.port);
        const cl = c.config.clusters.find((x) => x.name === name) as Obj | undefined;
        if (!cl) continue;
        const port = l.portMapping.port;
        const expected = new Set(registered.flatMap((e) => {
          if (e.port === port || (e.ports ?? []).includes(port)) return [`${e.address} ${port}`];
          return listeners.length === 1 && e.ports === undefined ? [`${e.address} ${e.port}`] : [];
        }));
        const dns = node.spec.serviceDiscovery?.dns;
        if (dns && expected.size === 0) {
          assert.equal(cl.type, dns.responseType === 'ENDPOINTS' ? 'STRICT_DNS' : 'LOGICAL_DNS', `${name}: DNS cluster type`);
          const sa = cl.loadAssignment.endpoints[0].lbEndpoints[0].endpoint.address.socketAddress;
          assert.deepEqual([sa.address, sa.portValue], [dns.hostname, port], `${name}: the node's DNS name`);
          continue;
        }
        assert.equal(cl.type, 'EDS', `${name}: registered instances (or Cloud Map) mean EDS`);
        const a = c.config.clusterLoadAssignments.find((x) => x.clusterName === name) as Obj;
        const got = (a.endpoints ?? []).flatMap((e: Obj) => e.lbEndpoints).map((e: Obj) => `${e.endpoint.address.socketAddress.address} ${e.endpoint.address.socketAddress.portValue}`);
        assert.deepEqual(got, [...expected].sort((x, y) => {
          const [ax, px] = x.split(' ');
          const [ay, py] = y.split(' ');
          return ax! < ay! ? -1 : ax! > ay! ? 1 : Number(px) - Number(py);
        }), `${name}: endpoints`);
      }
    }
  });
});

test('client TLS: never plaintext to a STRICT server; without any client policy, TLS exactly to STRICT and PERMISSIVE servers; an applicable policy is never downgraded', () => {
  forAll((c) => {
    const noPolicy = ownPolicies(c).length === 0;
    for (const node of nodes(c.mesh)) {
      for (const l of node.spec.listeners ?? []) {
        const name = egressClusterName(meshName(c), node.name, l.portMapping.protocol, l.portMapping.port);
        const cl = c.config.clusters.find((x) => x.name === name);
        if (!cl) continue;
        const mode = l.tls?.mode ?? 'DISABLED';
        if (mode === 'STRICT') assert.ok(cl.transportSocket, `${name}: plaintext to a STRICT server`);
        if (noPolicy) assert.equal(cl.transportSocket !== undefined, mode !== 'DISABLED', `${name}: no client policy, server ${mode}`);
        if (cl.transportSocket) assert.equal((cl.transportSocket as Obj).typedConfig['@type'], T.upstreamTls, name);
        assert.equal(cl.outlierDetection !== undefined, l.outlierDetection !== undefined, `${name}: the target listener's outlier detection`);
      }
    }
    // Never downgraded: a backend's applicable client policy holds on its provider node's clusters, whatever
    // other backends reaching the same target (two services of one node, a router target) ask for.
    if (c.proxy.kind !== 'virtualNode') return;
    const spec = nodeSpec(c.mesh, c.proxy.name)!;
    const defaults = spec.backendDefaults?.clientPolicy?.tls;
    const seen = new Set<string>();
    for (const b of spec.backends ?? []) {
      const vs = b.virtualService;
      if (!vs || seen.has(vs.virtualServiceName)) continue; // a service listed twice: its first entry counts
      seen.add(vs.virtualServiceName);
      const own = vs.clientPolicy?.tls;
      const policy = defaults && own ? { ...defaults, ...own } : own ?? defaults;
      const provider = specOf<VirtualServiceSpec>(c.mesh, 'virtualService', vs.virtualServiceName)?.provider?.virtualNode?.virtualNodeName;
      if (!policy || policy.enforce === false || provider === undefined) continue;
      for (const l of nodeSpec(c.mesh, provider)?.listeners ?? []) {
        const { port, protocol } = l.portMapping;
        if (policy.ports && policy.ports.length > 0 && !policy.ports.includes(port)) continue;
        const name = egressClusterName(meshName(c), provider, protocol, port);
        const common = (c.config.clusters.find((x) => x.name === name) as Obj | undefined)?.transportSocket?.typedConfig?.commonTlsContext as Obj | undefined;
        const at = `${name}: backend ${vs.virtualServiceName}'s client policy`;
        assert.ok(common && (common.validationContext || common.combinedValidationContext || common.validationContextSdsSecretConfig), `${at} validates the server; the cluster does not`);
        if (policy.certificate) assert.ok(common.tlsCertificates || common.tlsCertificateSdsSecretConfigs, `${at} presents a certificate; the cluster does not`);
      }
    }
  });
});

test('access logs: every logger writes to the accessLogPath option, else the proxy\'s logging path; none without either', () => {
  forAll((c) => {
    const spec = (c.proxy.kind === 'virtualNode' ? nodeSpec(c.mesh, c.proxy.name) : gatewaySpec(c.mesh, c.proxy.name))!;
    const path = c.input.options?.accessLogPath ?? spec.logging?.accessLog?.file?.path;
    for (const [o, where] of allObjects(c.config)) {
      if (o['@type'] === T.hcm || o['@type'] === T.tcpProxy) {
        assert.equal(o.accessLog !== undefined, path !== undefined, `${where}: access log iff configured`);
      }
      if (o['@type'] === T.fileAccessLog) assert.equal(o.path, path, `${where}: access log path`);
    }
  });
});

test('routes: router and gateway routes in App Mesh priority order, each on the listeners its type and port fit', () => {
  forAll((c) => {
    const m = c.mesh;
    if (c.proxy.kind === 'virtualGateway') {
      const gw = gatewaySpec(m, c.proxy.name)!;
      const grs = m.records.filter((r) => r.kind === 'gatewayRoute' && r.parent === c.proxy.name);
      for (const l of gw.listeners) {
        const { port, protocol } = l.portMapping;
        const rc = c.config.routeConfigurations.find((r) => r.name === ingressRouteConfigName(protocol, port)) as Obj;
        assert.ok(rc, `no route configuration for gateway listener ${port}`);
        assert.deepEqual(rc.virtualHosts.map((h: Obj) => h.domains), [['*']], `${String(rc.name)}: one catch-all host`);
        const routes = (rc.virtualHosts[0].routes ?? []) as Obj[];
        let last = -1;
        for (const r of routes) {
          const spec = grs.find((g) => g.name === r.name)?.spec as GatewayRouteSpec | undefined;
          assert.ok(spec, `${String(rc.name)}: route ${String(r.name)} is no gateway route of ${c.proxy.name}`);
          const kind = protocol === 'http' ? spec.httpRoute : protocol === 'http2' ? spec.http2Route : spec.grpcRoute;
          assert.ok(kind, `${String(rc.name)}: ${String(r.name)} does not fit a ${protocol} listener`);
          assert.ok(kind.match.port === undefined || kind.match.port === port, `${String(rc.name)}: ${String(r.name)} is for port ${String(kind.match.port)}`);
          const priority = spec.priority ?? Number.MAX_SAFE_INTEGER;
          assert.ok(priority >= last, `${String(rc.name)}: ${String(r.name)} out of priority order`);
          last = priority;
          const target = kind.action.target.virtualService.virtualServiceName;
          const provider = specOf<VirtualServiceSpec>(m, 'virtualService', target)?.provider;
          if (provider?.virtualRouter) {
            assert.equal(r.route.cluster, selfRedirectClusterName(meshName(c), c.proxy.name, protocol, egressListenerPortOf(c)), `${String(r.name)}: router targets go through the self redirect`);
            assert.equal(r.route.hostRewriteLiteral, kind.action.target.port === undefined ? target : `${target}:${kind.action.target.port}`, `${String(r.name)}: the egress hop routes on the service name`);
          } else {
            assert.ok(provider?.virtualNode, `${String(r.name)}: a route to a service without provider`);
          }
        }
      }
    }
    // Router routes, wherever they appear (a node's egress, a gateway's egress hop): priority order per host.
    for (const rc of c.config.routeConfigurations.filter((r) => String(r.name).startsWith('rds_egress_'))) {
      for (const h of (rc.virtualHosts ?? []) as Obj[]) {
        let last = -1;
        for (const r of (h.routes ?? []) as Obj[]) {
          const slash = String(r.name).indexOf('/');
          if (slash < 0) continue;
          const spec = specOf<RouteSpec>(m, 'route', String(r.name).slice(slash + 1), String(r.name).slice(0, slash));
          assert.ok(spec, `${String(rc.name)}: ${String(r.name)} is no route`);
          const priority = spec.priority ?? Number.MAX_SAFE_INTEGER;
          assert.ok(priority >= last, `${String(rc.name)}/${String(h.name)}: ${String(r.name)} out of priority order`);
          last = priority;
          assert.ok(r.route.retryPolicy?.numRetries, `${String(r.name)}: router routes always carry a retry policy`);
        }
      }
    }
  });
});
