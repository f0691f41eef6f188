// UpstreamTlsContext fields keymesh's proxy reads apart from the common context: max_session_keys (Envoy's
// default 1; 0 turns client-side session resumption off), refused with the field named when it is not a uint32.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Path, ProxyConfigError } from '../resources/values.ts';
import { compileUpstreamTls, DEFAULT_MAX_SESSION_KEYS, UPSTREAM_TLS } from './compile.ts';

function upstream(extra: Record<string, unknown>) {
  return compileUpstreamTls({ name: 'envoy.transport_sockets.tls', typedConfig: { '@type': UPSTREAM_TLS, commonTlsContext: {}, ...extra } }, new Path('cluster c').at('transportSocket'));
}

test('max_session_keys: absent is Envoy\'s default (1); 0 and other counts are kept', () => {
  assert.equal(DEFAULT_MAX_SESSION_KEYS, 1);
  assert.equal(upstream({}).maxSessionKeys, 1);
  assert.equal(upstream({ maxSessionKeys: { value: 0 } }).maxSessionKeys, 0);
  // protobufjs leaves a wrapper's default value out: `{}` is 0.
  assert.equal(upstream({ maxSessionKeys: {} }).maxSessionKeys, 0);
  assert.equal(upstream({ maxSessionKeys: { value: 4 } }).maxSessionKeys, 4);
  assert.equal(upstream({ maxSessionKeys: { value: '7' } }).maxSessionKeys, 7);
});

test('a bad max_session_keys is refused naming the field', () => {
  const cases: [unknown, RegExp][] = [
    [{ value: -1 }, /^cluster c\.transportSocket\.typedConfig\.maxSessionKeys: must be an integer from 0 to 4294967295, not -1$/],
    [{ value: 1.5 }, /maxSessionKeys: must be an integer from 0 to 4294967295, not 1\.5$/],
    [{ value: 4294967296 }, /maxSessionKeys: must be an integer from 0 to 4294967295/],
    [{ value: 'many' }, /^cluster c\.transportSocket\.typedConfig\.maxSessionKeys\.value: must be a number$/],
    [3, /^cluster c\.transportSocket\.typedConfig\.maxSessionKeys: must be an object$/],
  ];
  for (const [v, message] of cases) {
    assert.throws(() => upstream({ maxSessionKeys: v }), (e: unknown) => e instanceof ProxyConfigError && message.test(e.message), JSON.stringify(v));
  }
});

test('other UpstreamTlsContext fields are still refused', () => {
  assert.throws(() => upstream({ allowRenegotiation: true }), /typedConfig\.allowRenegotiation: is not supported by keymesh's proxy/);
});
