import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeResource, encodeResource, roundTrip, TYPE_URLS } from './protos.ts';

const listener = {
  name: 'lds_ingress_0.0.0.0_15000',
  address: { socketAddress: { address: '0.0.0.0', portValue: 15000 } },
  filterChains: [{
    filters: [{
      name: 'envoy.filters.network.http_connection_manager',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        statPrefix: 'ingress',
        rds: { routeConfigName: 'rds_ingress_http_9080', configSource: { ads: {}, resourceApiVersion: 'V3' } },
        httpFilters: [{ name: 'envoy.filters.http.router', typedConfig: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } }],
      },
    }],
    transportSocket: {
      name: 'envoy.transport_sockets.tls',
      typedConfig: {
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
        requireClientCertificate: { value: true },
        commonTlsContext: { tlsCertificateSdsSecretConfigs: [{ name: 'spiffe://td/front', sdsConfig: { ads: {}, resourceApiVersion: 'V3' } }] },
      },
    },
  }],
};

test('a listener with Any-typed filters and TLS context survives encoding unchanged', () => {
  assert.deepEqual(roundTrip(TYPE_URLS.listener, listener), listener);
  assert.ok(encodeResource(TYPE_URLS.listener, listener).length > 100);
});

test('a misspelled field does not survive, so round-trip tests catch it', () => {
  const bad = { ...listener, adress: listener.address };
  assert.notDeepEqual(roundTrip(TYPE_URLS.listener, bad), bad);
  assert.equal(decodeResource(TYPE_URLS.listener, encodeResource(TYPE_URLS.listener, bad)).adress, undefined);
});
