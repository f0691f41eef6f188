// Regenerates src/model/appmesh-model.json from the App Mesh model botocore ships (Debian `awscli`).
// Run: npm run gen:model
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { BOTOCORE_MODEL_PATHS, compactModel, type RawModel } from '../src/model/compact-model.ts';

const OUT = new URL('../src/model/appmesh-model.json', import.meta.url);
const source = BOTOCORE_MODEL_PATHS.find((p) => existsSync(p));
if (!source) {
  console.error(`gen-appmesh-model: no botocore App Mesh model found (apt-get install awscli); looked in:\n  ${BOTOCORE_MODEL_PATHS.join('\n  ')}`);
  process.exit(1);
}
const model = compactModel(JSON.parse(readFileSync(source, 'utf8')) as RawModel);
writeFileSync(OUT, JSON.stringify(model, null, 1) + '\n');
console.log(`wrote ${OUT.pathname} from ${source}: ${Object.keys(model.operations).length} operations, ${Object.keys(model.shapes).length} shapes`);
