// Name resolution for STRICT_DNS and LOGICAL_DNS clusters, with Envoy's dns_lookup_family semantics (from
// its c-ares resolver, source/extensions/network/dns_resolver/cares/dns_impl.cc):
//   V4_ONLY / V6_ONLY  one family;
//   AUTO               IPv6 first, IPv4 only when the IPv6 lookup gives no address ("V6_PREFERRED");
//   V4_PREFERRED       IPv4 first, IPv6 only when the IPv4 lookup gives no address;
//   ALL                both families, every address (IPv4 first here).
// A lookup that fails or finds nothing in every family it tries is a failed resolution: the cluster keeps its
// previous hosts, as Envoy does.
import { lookup } from 'node:dns/promises';
import type { DnsLookupFamily } from './compile.ts';

/** Addresses of one family for a name; rejects (or returns []) when there are none. Injected in tests. */
export type Resolver = (hostname: string, family: 4 | 6) => Promise<readonly string[]>;

export const systemResolver: Resolver = async (hostname, family) => {
  const found = await lookup(hostname, { all: true, family, verbatim: true });
  return found.map((a) => a.address);
};

async function family(resolver: Resolver, hostname: string, f: 4 | 6): Promise<{ addresses: readonly string[]; error?: unknown }> {
  try {
    return { addresses: await resolver(hostname, f) };
  } catch (error) {
    return { addresses: [], error };
  }
}

/** The addresses `hostname` has under `lookupFamily`, in order; rejects when there are none. */
export async function resolve(resolver: Resolver, hostname: string, lookupFamily: DnsLookupFamily): Promise<string[]> {
  let results: { addresses: readonly string[]; error?: unknown }[];
  switch (lookupFamily) {
    case 'V4_ONLY':
      results = [await family(resolver, hostname, 4)];
      break;
    case 'V6_ONLY':
      results = [await family(resolver, hostname, 6)];
      break;
    case 'ALL':
      results = await Promise.all([family(resolver, hostname, 4), family(resolver, hostname, 6)]);
      break;
    case 'V4_PREFERRED':
    case 'AUTO': {
      const [first, second]: [4 | 6, 4 | 6] = lookupFamily === 'AUTO' ? [6, 4] : [4, 6];
      const r = await family(resolver, hostname, first);
      results = r.addresses.length > 0 ? [r] : [r, await family(resolver, hostname, second)];
      break;
    }
  }
  const addresses = [...new Set(results.flatMap((r) => r.addresses))];
  if (addresses.length === 0) {
    const error = results.find((r) => r.error !== undefined)?.error;
    throw new Error(`no address for ${hostname} (${lookupFamily})${error ? `: ${(error as Error).message ?? String(error)}` : ''}`, { cause: error });
  }
  return addresses;
}
