// The compiled engine (dist/) finds its files through import.meta.url, as the sources do (src/):
// copies every file under src/ that tsc does not emit (the web UI, fraud data), and the Redoc bundle
// that /docs serves, since a production install leaves out dev dependencies (redoc is one).
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');

let copied = 0;
for (const entry of readdirSync(src, { recursive: true, withFileTypes: true })) {
  if (!entry.isFile() || entry.name.endsWith('.ts') || entry.name.endsWith('.md')) continue;
  // parentPath is Node 20.12+; engines allows 20.10, where it is called path.
  const from = path.join(entry.parentPath ?? entry.path, entry.name);
  const to = path.join(dist, path.relative(src, from));
  mkdirSync(path.dirname(to), { recursive: true });
  copyFileSync(from, to);
  copied++;
}

const redoc = path.dirname(fileURLToPath(import.meta.resolve('redoc/bundles/redoc.standalone.js')));
for (const name of ['redoc.standalone.js', 'redoc.standalone.js.LICENSE.txt']) {
  copyFileSync(path.join(redoc, name), path.join(dist, 'openapi', name));
  copied++;
}
process.stdout.write(`copied ${copied} asset files into dist/\n`);
