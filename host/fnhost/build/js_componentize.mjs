// fnhost's JavaScript guest build, run by fnhost/build/js.py with the pinned tools' node_modules:
//
//   node js_componentize.mjs TOOLS_NODE_MODULES SRC ENTRY SDK WIT OUT
//
// 1. Stage the guest's own modules (SRC without node_modules) in a temporary directory, with the
//    SDK at .fnhost/sdk. Only import specifiers are rewritten, in place, so every line and file
//    name in a JS stack trace is the guest's own ("handler@app.js:12:5").
// 2. `import ... from "fnhost"` points at the staged SDK; every other bare specifier is an npm
//    package from SRC/node_modules, bundled by rolldown into .fnhost/deps (one build for all of
//    them, so packages they share are included once). Node.js built-ins do not exist in the guest
//    (StarlingMonkey is a web-style runtime): importing one is a build error naming the package.
// 3. componentize-js (SpiderMonkey) snapshots the staged entry module against the `function`
//    world with wasi:http left out (fnhost does not provide it).
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, sep } from 'node:path';
import { builtinModules } from 'node:module';
import { pathToFileURL } from 'node:url';

const [toolsDir, src, entry, sdk, wit, out] = process.argv.slice(2);
const load = (path) => import(pathToFileURL(join(toolsDir, path)).href);
const { init, parse } = await load('es-module-lexer/dist/lexer.js');
const { rolldown } = await load('rolldown/dist/index.mjs');
const { componentize } = await load('@bytecodealliance/componentize-js/src/componentize.js');

const JS = /\.(m?js)$/;
const SKIP = new Set(['node_modules']);
const BUILTINS = new Set(builtinModules);

function fail(message) {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

function* files(root, dir = root) {
  for (const name of readdirSync(dir)) {
    if (name.startsWith('.') || SKIP.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* files(root, path);
    else yield relative(root, path);
  }
}

const stage = mkdtempSync(join(tmpdir(), 'fnhost-js-'));
try {
  cpSync(src, stage, { recursive: true, filter: (p) => !relative(src, p).split(sep).some((part) => SKIP.has(part) || part.startsWith('.')) });
  cpSync(sdk, join(stage, '.fnhost', 'sdk'), { recursive: true });
  await init;

  // rel path of a staged module -> its source, with bare specifiers rewritten
  const deps = new Map(); // bare specifier -> chunk name in .fnhost/deps
  const rewritten = new Map();
  for (const rel of files(stage)) {
    if (!JS.test(rel)) continue;
    const code = readFileSync(join(stage, rel), 'utf8');
    let imports, exports;
    try {
      [imports, exports] = parse(code, rel);
    } catch (e) {
      fail(`${rel}: not a valid ES module: ${e.message}`);
    }
    if (rel === entry && !/export\s*\*/.test(code)) { // `export * from` names are not listed
      const missing = ['handleHttp', 'handleEvent'].filter((name) => !exports.some((x) => x.n === name));
      if (missing.length) {
        fail(`${rel}: does not export ${missing.join(' and ')}, the function world's handlers; end it with\n  export const { handleHttp, handleEvent } = app.world();`);
      }
    }
    let text = '';
    let last = 0;
    const fromDir = dirname(join(stage, rel));
    for (const imp of imports) {
      const spec = imp.n;
      if (spec === undefined || imp.d === -2) continue; // import.meta, or a computed dynamic import
      let target;
      if (spec.startsWith('fnhost:') || spec.startsWith('.') || spec.startsWith('/')) continue;
      if (spec === 'fnhost') {
        target = join(stage, '.fnhost', 'sdk', 'index.js');
      } else if (spec.startsWith('node:') || BUILTINS.has(spec.split('/')[0])) {
        fail(`${rel}: imports the Node.js built-in "${spec}", which a fnhost guest does not have (it runs in StarlingMonkey, a web-style JS runtime, with fnhost's kv/queue/secrets/log instead)`);
      } else {
        if (!deps.has(spec)) deps.set(spec, `dep${deps.size}`);
        target = join(stage, '.fnhost', 'deps', `${deps.get(spec)}.js`);
      }
      let path = relative(fromDir, target).split(sep).join('/');
      if (!path.startsWith('.')) path = `./${path}`;
      const quoted = imp.d === -1 ? [imp.s, imp.e] : [imp.s + 1, imp.e - 1]; // dynamic: s..e includes quotes
      text += code.slice(last, quoted[0]) + path;
      last = quoted[1];
    }
    if (last > 0) rewritten.set(rel, text + code.slice(last));
  }
  for (const [rel, text] of rewritten) writeFileSync(join(stage, rel), text);

  if (deps.size > 0) {
    const problems = [];
    let bundle;
    try {
      bundle = await rolldown({
        input: Object.fromEntries([...deps].map(([spec, name]) => [name, spec])),
        cwd: src, // resolves from the guest's own node_modules
        platform: 'neutral',
        resolve: { mainFields: ['module', 'main'], conditionNames: ['import', 'module', 'default'] },
        onLog(level, log) {
          if (log.code === 'UNRESOLVED_IMPORT' || level === 'error') problems.push(log.message);
        },
      });
    } catch (e) {
      fail(`bundling the npm packages ${[...deps.keys()].join(', ')} from ${join(src, 'node_modules')} failed (run \`npm install\` in ${src}?):\n${e.message}`);
    }
    if (problems.length) {
      fail(`bundling the npm packages ${[...deps.keys()].join(', ')} failed:\n${problems.join('\n')}\n(a package that needs Node.js built-ins cannot run in a fnhost guest)`);
    }
    mkdirSync(join(stage, '.fnhost', 'deps'), { recursive: true });
    const { output } = await bundle.write({ dir: join(stage, '.fnhost', 'deps'), format: 'esm', entryFileNames: '[name].js', chunkFileNames: 'shared-[hash].js' });
    const chunks = new Set(output.map((o) => o.fileName));
    const external = output.flatMap((o) => (o.type === 'chunk' ? o.imports : [])).filter((i) => !chunks.has(i) && !i.startsWith('fnhost:'));
    if (external.length) {
      const users = output.filter((o) => o.type === 'chunk' && o.imports.some((i) => external.includes(i)));
      const packages = users.map((o) => [...deps].find(([, name]) => `${name}.js` === o.fileName)?.[0] ?? o.fileName);
      fail(`bundling the npm packages ${packages.join(', ')} failed: they import ${[...new Set(external)].join(', ')}, which a fnhost guest does not have (Node.js built-ins do not exist in StarlingMonkey, a web-style JS runtime)`);
    }
  }

  process.chdir(stage); // componentize-js names modules relative to the working directory
  let component;
  try {
    ({ component } = await componentize({
      sourcePath: join(stage, entry),
      witPath: wit,
      worldName: 'function',
      disableFeatures: ['http', 'fetch-event'],
    }));
  } catch (e) {
    fail(String(e.message || e).replaceAll(`${stage}/`, ''));
  }
  writeFileSync(out, component);
} finally {
  rmSync(stage, { recursive: true, force: true });
}
