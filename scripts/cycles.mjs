// Prints the import cycles among the files of src/ and exits 1 if there is one. Every relative
// import counts: static, type-only, re-exports and import(), since a cycle of types alone
// still ties two files together; a cycle only through `import type` is marked so.
// Usage: node scripts/cycles.mjs [dir]
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? 'src');

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...files(path));
    else if (/\.(ts|mts|js|mjs)$/.test(name) && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

/** The files a file imports, resolved (`./x.js` is `./x.ts` in src), each with whether only its types are. */
function imports(file) {
  const text = readFileSync(file, 'utf8').replace(/\/\*[\s\S]*?\*\/|(^|[^:])\/\/.*$/gm, '$1');
  const found = [
    ...[...text.matchAll(/^\s*(?:import|export)\s+(type\s+)?[^'";]*?\bfrom\s*['"](\.[^'"]+)['"]/gm)].map((m) => ({ spec: m[2], typeOnly: Boolean(m[1]) })),
    ...[...text.matchAll(/\bimport\s*\(\s*['"](\.[^'"]+)['"]|^\s*import\s+['"](\.[^'"]+)['"]/gm)].map((m) => ({ spec: m[1] ?? m[2], typeOnly: false })),
  ];
  return found.map(({ spec, typeOnly }) => {
    const target = resolve(dirname(file), spec);
    for (const candidate of [target, target.replace(/\.js$/, '.ts'), target.replace(/\.mjs$/, '.mts')]) {
      try {
        if (statSync(candidate).isFile()) return { file: candidate, typeOnly };
      } catch {}
    }
    return null;
  }).filter(Boolean);
}

const edges = new Map(files(root).map((file) => [file, imports(file)]));
const all = new Map([...edges].map(([file, list]) => [file, list.map((e) => e.file)]));
const runtime = new Map([...edges].map(([file, list]) => [file, list.filter((e) => !e.typeOnly).map((e) => e.file)]));

// Tarjan's strongly connected components: a component of more than one file, or a file that imports itself, is a cycle.
function cyclesOf(graph) {
  let index = 0;
  const stack = [];
  const state = new Map();
  const cycles = [];
  const visit = (file) => {
    const s = { index, low: index, onStack: true };
    index++;
    state.set(file, s);
    stack.push(file);
    for (const next of graph.get(file) ?? []) {
      if (!state.has(next)) {
        visit(next);
        s.low = Math.min(s.low, state.get(next).low);
      } else if (state.get(next).onStack) {
        s.low = Math.min(s.low, state.get(next).index);
      }
    }
    if (s.low !== s.index) return;
    const component = [];
    let member;
    do {
      member = stack.pop();
      state.get(member).onStack = false;
      component.push(member);
    } while (member !== file);
    if (component.length > 1 || graph.get(file).includes(file)) cycles.push(component.map((f) => relative(process.cwd(), f)).sort());
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

const cycles = cyclesOf(all);
const atRuntime = new Set(cyclesOf(runtime).flat());
for (const component of cycles) {
  console.log(`cycle: ${component.join(' <-> ')}${component.some((f) => atRuntime.has(f)) ? '' : ' (through type imports only)'}`);
}
console.log(`${all.size} files, ${cycles.length} cycle${cycles.length === 1 ? '' : 's'}`);
process.exit(cycles.length === 0 ? 0 : 1);
