// Envoy's default tag extraction, for the Prometheus output: `cluster.x.upstream_rq_2xx` becomes the metric
// `envoy_cluster_upstream_rq_xx` with the labels `envoy_response_code_class="2"` and `envoy_cluster_name="x"`.
//
// The subset of envoyproxy/envoy source/common/config/well_known_names.cc (TagNameValues) that applies to the
// stats this proxy has, with the same regular expressions and token patterns, applied the way
// source/common/stats/tag_producer_impl.cc applies them:
// - every extractor matches against the full stat name; each match removes a span of characters (regex: the
//   first capture group; token pattern: the `$` token and the dot after it, or before it when it is last) and
//   the tag's value is the second capture group (or the `$` token);
// - extractors without a fixed first token run first, then those for the name's first token, each group in
//   definition order, which is also the order of the labels.

import type { Tag, TaggedName } from './stats.ts';

interface Extractor {
  /** The tag name (`envoy.cluster_name`); becomes the Prometheus label after sanitising. */
  readonly tag: string;
  /** First token of the names it applies to, or '' for any. */
  readonly prefix: string;
  /** The removed span and the value, or undefined when it does not apply. */
  match(name: string, tokens: readonly string[]): { start: number; end: number; value: string } | undefined;
}

// Stand-ins from well_known_names.cc's expandRegex.
const ADDRESS = String.raw`(?:(?:\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|\[[a-fA-F_\d]+\])_\d+)`;
const CIPHER = String.raw`[\w-]+`;
const TLS_VERSION = String.raw`TLSv\d\.\d`;
const TAG_VALUE = String.raw`[^\.]+`;
const ROUTE_CONFIG_NAME = String.raw`[\w\-\.]+`;
const LISTENER_OR_CLUSTER_WITH_NAME = String.raw`(?:listener|cluster)\..*?`;

function regex(tag: string, source: string, substr = '', negative = ''): Extractor {
  const re = new RegExp(source, 'd');
  // Envoy's extractRegexPrefix: `^word\.` fixes the first token.
  const prefix = /^\^(\w+)\\\./.exec(source)?.[1] ?? '';
  return {
    tag,
    prefix,
    match(name) {
      if (substr && !name.includes(substr)) return undefined;
      const m = re.exec(name);
      const span = m?.indices?.[1];
      if (!m || !span) return undefined;
      const value = m[2] ?? m[1] ?? '';
      if (negative && value === negative) return undefined;
      return { start: span[0], end: span[1], value };
    },
  };
}

/** Envoy's TagExtractorTokensImpl: `*` is one token, `**` one or more, `$` the value. */
function tokens(tag: string, pattern: string): Extractor {
  const pat = pattern.split('.');
  const at = pat.indexOf('$');
  return {
    tag,
    prefix: pat[0] !== '$' && pat[0] !== '*' && pat[0] !== '**' ? (pat[0] ?? '') : '',
    match(_name, input) {
      const found = searchTokens(pat, at, input, 0, 0, 0);
      if (!found) return undefined;
      const value = input[found.index] ?? '';
      let start = found.start;
      let end = start + value.length;
      if (found.index < input.length - 1) end++;
      else if (start > 0) start--;
      return { start, end, value };
    },
  };
}

function searchTokens(pat: readonly string[], at: number, input: readonly string[], i: number, p: number, char: number): { index: number; start: number } | undefined {
  let result: { index: number; start: number } | undefined;
  for (; i < input.length && p < pat.length; i++, p++) {
    if (p === at) {
      result = { index: i, start: char };
      char += input[i]!.length + 1;
      continue;
    }
    const expected = pat[p];
    if (expected === '**') {
      if (p === pat.length - 1) return result;
      for (; i < input.length; i++) {
        const rest = searchTokens(pat, at, input, i, p + 1, char);
        if (rest) return result ?? rest;
        char += input[i]!.length + 1;
      }
      return undefined;
    }
    if (expected !== '*' && expected !== input[i]) return undefined;
    char += input[i]!.length + 1;
  }
  return p === pat.length && i === input.length ? result : undefined;
}

const EXTRACTORS: readonly Extractor[] = [
  regex('envoy.response_code', String.raw`_rq(_(\d{3}))$`, '_rq_'),
  regex('envoy.response_code_class', String.raw`_rq_((\d))xx$`, '_rq_'),
  regex('envoy.ssl_cipher', String.raw`^listener\..*?\.ssl\.ciphers(\.(${CIPHER}))$`, '.ssl.ciphers.'),
  regex('envoy.ssl_curve', String.raw`^${LISTENER_OR_CLUSTER_WITH_NAME}\.ssl\.curves(\.(${CIPHER}))$`, '.ssl.curves.'),
  regex('envoy.ssl_sigalg', String.raw`^${LISTENER_OR_CLUSTER_WITH_NAME}\.ssl\.sigalgs(\.(${CIPHER}))$`, '.ssl.sigalgs.'),
  regex('envoy.ssl_version', String.raw`^${LISTENER_OR_CLUSTER_WITH_NAME}\.ssl\.versions(\.(${TLS_VERSION}))$`, '.ssl.versions.'),
  // Envoy's name for this one has no `envoy.` prefix.
  regex('cipher_suite', String.raw`^cluster\.${TAG_VALUE}\.ssl\.ciphers(\.(${CIPHER}))$`, '.ssl.ciphers.'),
  regex('envoy.http_conn_manager_prefix', String.raw`^listener\..*?\.http\.((${TAG_VALUE})\.)`, '.http.'),
  regex('envoy.listener_address', String.raw`^listener\.((${ADDRESS}|${TAG_VALUE})\.)`, '', 'admin'),
  regex('envoy.rds_route_config', String.raw`^http\.${TAG_VALUE}\.rds\.((${ROUTE_CONFIG_NAME})\.)\w+?$`, '.rds.'),
  tokens('envoy.tcp_prefix', 'tcp.$.**'),
  tokens('envoy.cluster_name', 'cluster.$.**'),
  tokens('envoy.http_conn_manager_prefix', 'http.$.**'),
  tokens('envoy.virtual_host', 'vhost.$.**'),
  tokens('envoy.route', 'vhost.*.route.$.**'),
];

const ANY_PREFIX = EXTRACTORS.filter((e) => e.prefix === '');
const BY_PREFIX = new Map<string, Extractor[]>();
for (const e of EXTRACTORS) {
  if (e.prefix === '') continue;
  const list = BY_PREFIX.get(e.prefix) ?? [];
  list.push(e);
  BY_PREFIX.set(e.prefix, list);
}

/** Envoy's tag-extracted name and tags for a stat name. */
export function extractTags(name: string): TaggedName {
  const input = name.split('.');
  const first = name.includes('.') ? (input[0] ?? '') : '';
  const tags: Tag[] = [];
  const removed: [number, number][] = [];
  const seen = new Set<string>();
  for (const e of [...ANY_PREFIX, ...(BY_PREFIX.get(first) ?? [])]) {
    if (seen.has(e.tag)) continue;
    const m = e.match(name, input);
    if (!m) continue;
    seen.add(e.tag);
    tags.push({ name: e.tag, value: m.value });
    removed.push([m.start, m.end]);
  }
  if (removed.length === 0) return { name, tags };
  const keep = new Uint8Array(name.length).fill(1);
  for (const [start, end] of removed) keep.fill(0, start, end);
  let out = '';
  for (let i = 0; i < name.length; i++) if (keep[i]) out += name[i];
  return { name: out, tags };
}
