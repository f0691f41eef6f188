// Reduces botocore's App Mesh service model to what keymesh routes and validates with: operations, HTTP
// bindings, shapes and their constraints. Documentation strings are dropped. Pure; used by
// scripts/gen-appmesh-model.ts and by the test that checks the committed copy is current.

interface RawMember { shape: string; location?: string; locationName?: string; idempotencyToken?: boolean }
interface RawShape {
  type: string; members?: Record<string, RawMember>; member?: RawMember; required?: string[];
  min?: number; max?: number; enum?: string[]; pattern?: string; union?: boolean; payload?: string;
  error?: { httpStatusCode: number };
}
interface RawOperation {
  http: { method: string; requestUri: string };
  input?: { shape: string };
  output?: { shape: string };
  errors?: { shape: string }[];
}
export interface RawModel { metadata: unknown; operations: Record<string, RawOperation>; shapes: Record<string, RawShape> }

export function compactModel(raw: RawModel) {
  const operations: Record<string, unknown> = {};
  for (const [name, op] of Object.entries(raw.operations)) {
    operations[name] = {
      method: op.http.method, uri: op.http.requestUri, input: op.input?.shape, output: op.output?.shape,
      errors: (op.errors ?? []).map((e) => e.shape),
    };
  }
  const shapes: Record<string, unknown> = {};
  for (const [name, s] of Object.entries(raw.shapes)) {
    const out: Record<string, unknown> = { type: s.type };
    for (const k of ['required', 'min', 'max', 'enum', 'pattern', 'union', 'payload'] as const) {
      if (s[k] !== undefined) out[k] = s[k];
    }
    if (s.error) out.httpStatus = s.error.httpStatusCode;
    if (s.member) out.member = { shape: s.member.shape };
    if (s.members) {
      out.members = Object.fromEntries(Object.entries(s.members).map(([m, v]) => {
        const mm: Record<string, unknown> = { shape: v.shape };
        if (v.location) { mm.location = v.location; mm.locationName = v.locationName; }
        if (v.idempotencyToken) mm.idempotencyToken = true;
        return [m, mm];
      }));
    }
    shapes[name] = out;
  }
  return { metadata: raw.metadata, operations, shapes };
}

/** Where Debian's awscli package (and a pip botocore) keep the model. */
export const BOTOCORE_MODEL_PATHS = [
  '/usr/lib/python3/dist-packages/awscli/botocore/data/appmesh/2019-01-25/service-2.json',
  '/usr/lib/python3/dist-packages/botocore/data/appmesh/2019-01-25/service-2.json',
];
