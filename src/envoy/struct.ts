// google.protobuf.Struct as @grpc/proto-loader hands it over (`{ fields: { k: { stringValue: ... } } }`, with
// `kind` naming the set member when decoded with `oneofs: true`) to and from plain JSON. Envoy's
// node.metadata is a Struct.

export interface WireValue {
  kind?: string;
  nullValue?: unknown;
  numberValue?: number;
  stringValue?: string;
  boolValue?: boolean;
  structValue?: WireStruct;
  listValue?: { values?: WireValue[] };
}

export interface WireStruct {
  fields?: Record<string, WireValue>;
}

/** A decoded Struct as plain JSON. */
export function structToJson(s: WireStruct | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s?.fields ?? {})) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: WireValue): unknown {
  const kind = v.kind ?? Object.keys(v).find((k) => k !== 'kind');
  switch (kind) {
    case 'structValue': return structToJson(v.structValue);
    case 'listValue': return (v.listValue?.values ?? []).map(valueToJson);
    case 'stringValue': return v.stringValue ?? '';
    case 'numberValue': return v.numberValue ?? 0;
    case 'boolValue': return v.boolValue ?? false;
    default: return null;
  }
}

/** Plain JSON as a Struct to send (undefined members are left out). */
export function jsonToStruct(o: Readonly<Record<string, unknown>>): WireStruct {
  const fields: Record<string, WireValue> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) fields[k] = jsonToValue(v);
  return { fields };
}

function jsonToValue(v: unknown): WireValue {
  if (v === null) return { nullValue: 'NULL_VALUE' };
  if (typeof v === 'string') return { stringValue: v };
  if (typeof v === 'number') return { numberValue: v };
  if (typeof v === 'boolean') return { boolValue: v };
  if (Array.isArray(v)) return { listValue: { values: v.map(jsonToValue) } };
  if (typeof v === 'object') return { structValue: jsonToStruct(v as Record<string, unknown>) };
  throw new TypeError(`a ${typeof v} cannot go into a protobuf Struct`);
}
