// Typed access to keymesh's copy of the App Mesh 2019-01-25 service model (generated from botocore by
// scripts/gen-appmesh-model.ts; documentation stripped). Requests are routed and validated from it.
import raw from './appmesh-model.json' with { type: 'json' };

export interface ModelMember {
  shape: string;
  location?: 'uri' | 'querystring' | 'header';
  locationName?: string;
  idempotencyToken?: boolean;
}

export interface ModelShape {
  type: 'structure' | 'list' | 'string' | 'integer' | 'long' | 'boolean' | 'timestamp';
  members?: Record<string, ModelMember>;
  member?: { shape: string };
  required?: string[];
  min?: number;
  max?: number;
  enum?: string[];
  pattern?: string;
  union?: boolean;
  payload?: string;
  httpStatus?: number;
}

export interface ModelOperation {
  method: 'GET' | 'PUT' | 'DELETE' | 'POST';
  uri: string;
  input: string;
  output: string;
  errors: string[];
}

export const MODEL = raw as unknown as {
  metadata: { apiVersion: string; signingName: string };
  operations: Record<string, ModelOperation>;
  shapes: Record<string, ModelShape>;
};

export function shape(name: string): ModelShape {
  const s = MODEL.shapes[name];
  if (!s) throw new Error(`unknown shape ${name} in the App Mesh model`);
  return s;
}
