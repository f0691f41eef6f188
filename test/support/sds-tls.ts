// The App Mesh TLS material of seed 003's shape, for the data-plane tests' specs: SDS secrets named by SPIFFE IDs.

/**
 * The `certificate` and `validation` of a listener's `tls` or a client policy's `tls`: the workload's own SVID
 * (`<trustDomain>/<own>`), trust in the trust domain's bundle, and the peers it accepts checked by SPIFFE ID.
 * `trustDomain` is a SPIFFE URI (spiffe://example.org).
 */
export function sdsMutualTls(trustDomain: string, own: string, peers: readonly string[]) {
  return {
    certificate: { sds: { secretName: `${trustDomain}/${own}` } },
    validation: { trust: { sds: { secretName: trustDomain } }, subjectAlternativeNames: { match: { exact: peers.map((p) => `${trustDomain}/${p}`) } } },
  };
}
