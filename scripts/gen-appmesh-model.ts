// Derives keymesh's compact copy of the App Mesh 2019-01-25 service model from the one botocore ships
// (Debian `awscli`). Documentation strings are dropped; everything the server needs to route and validate
// requests (operations, HTTP bindings, shapes, constraints, errors) is kept. Run: npm run gen:model
import { readFileSync, writeFileSync } from 'node:fs';

const SOURCES = [
  '/usr/lib/python3/dist-packages/awscli/botocore/data/appmesh/2019-01-25/service-2.json',
  '/usr/lib/python3/dist-packages/botocore/data/appmesh/2019-01-25/service-2.json',
];
const OUT = new URL('../src/model/appmesh-model.json', import.meta.url);

interface RawMember { shape: string; location?: string; locationName?: string; idempotencyToken?: boolean }
interface RawShape {
  type: string; members?: Record<string, RawMember>; member?: RawMember; required?: string[];
  min?: number; max?: number; enum?: string[]; pattern?: string; union?: boolean; payload?: string;
  error?: { httpStatusCode: number }; exception?: boolean;
}

export function compactModel(raw: { metadata: unknown; operations: Record<string, any>; shapes: Record<string, RawShape> }) {
  const operations: Record<string, unknown> = {};
  for (const [name, op] of Object.entries(raw.operations)) {
    operations[name] = {
      method: op.http.method, uri: op.http.requestUri, input: op.input?.shape, output: op.output?.shape,
      errors: (op.errors ?? []).map((e: { shape: string }) => e.shape),
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

const source = SOURCES.find((p) => { try { readFileSync(p); return true; } catch { return false; } });
if (!source) {
  console.error(`gen-appmesh-model: no botocore App Mesh model found (install Debian's awscli); looked in:\n  ${SOURCES.join('\n  ')}`);
  process.exit(1);
}
const model = compactModel(JSON.parse(readFileSync(source, 'utf8')));
writeFileSync(OUT, JSON.stringify(model, null, 1) + '\n');
console.log(`wrote ${OUT.pathname} from ${source}: ${Object.keys(model.operations).length} operations, ${Object.keys(model.shapes).length} shapes`);
