#!/usr/bin/env node
/*
 * `npm run lint:layers`: checks the layer rules of docs/architecture.md against the real
 * imports of src/ (type-only imports count too: they couple modules just the same).
 *
 *   1. Each folder imports only the folders listed for it below: the data plane (wire, core,
 *      io, switch, gateway, nat, trace, faults, services, dataplane) never imports control,
 *      config, lab or cli; nothing imports a folder above its own.
 *   2. No import circle, between folders or between files.
 *   3. Elements never import each other: a module that defines an element (a class with a
 *      `readonly kind = '...'`, the name the graph knows it by) imports no other such module;
 *      only the graph builder (dataplane/) knows them all. Abstract bases (no kind) may be
 *      shared.
 *   4. Every drop reason declared in the registry (core/drops.ts, wire/drop.ts) is counted
 *      somewhere: a declared but unused code fails.
 *
 * Exit status 0 when clean, 1 with one line per problem otherwise.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');

/** Folder -> folders it may import (besides itself). Lower layers first. */
const ALLOWED = {
  wire: [],
  core: ['wire'],
  io: ['core', 'wire'],
  switch: ['core', 'wire'],
  trace: ['core', 'wire'],
  faults: ['core', 'wire', 'trace'],
  gateway: ['core', 'wire'],
  nat: ['core', 'wire', 'gateway'],
  services: ['core', 'wire'],
  uplink: ['core', 'wire', 'io'],
  dataplane: ['core', 'wire', 'io', 'switch', 'trace', 'faults', 'gateway', 'nat', 'services', 'uplink'],
  config: ['wire', 'trace', 'faults'],
  lab: ['core', 'wire', 'io', 'dataplane', 'config'],
  control: ['core', 'wire', 'trace', 'faults', 'dataplane', 'config', 'lab'],
  cni: ['config', 'lab', 'control'],
  cli: ['core', 'wire', 'io', 'trace', 'faults', 'dataplane', 'config', 'lab', 'control', 'cni'],
};
const DATA_PLANE = ['wire', 'core', 'io', 'switch', 'gateway', 'nat', 'trace', 'faults', 'services', 'uplink', 'dataplane'];

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]/g;
const DYNAMIC_RE = /import\(\s*['"]([^'"]+)['"]\s*\)/g;

function importsOf(file, text) {
  const specs = [];
  for (const re of [IMPORT_RE, DYNAMIC_RE]) for (const m of text.matchAll(re)) specs.push(m[1]);
  return specs.filter((s) => s.startsWith('.')).map((s) => resolve(dirname(file), s.replace(/\.js$/, '.ts')));
}

const folderOf = (file) => relative(SRC, file).split('/')[0];
const rel = (file) => relative(ROOT, file);

const files = walk(SRC);
const texts = new Map(files.map((f) => [f, readFileSync(f, 'utf8')]));
const graph = new Map(files.map((f) => [f, importsOf(f, texts.get(f))]));
const problems = [];

// 1. folder rules
for (const [file, deps] of graph) {
  const from = folderOf(file);
  const allowed = ALLOWED[from];
  if (allowed === undefined) {
    problems.push(`${rel(file)}: folder '${from}' has no layer rule (add it to scripts/lint-layers.js and docs/architecture.md)`);
    continue;
  }
  for (const dep of deps) {
    if (!texts.has(dep)) {
      problems.push(`${rel(file)}: imports ${rel(dep)}, which does not exist`);
      continue;
    }
    const to = folderOf(dep);
    if (to === from || allowed.includes(to)) continue;
    const why = DATA_PLANE.includes(from) && !DATA_PLANE.includes(to) ? 'data-plane code importing control-side code' : 'an import that runs back up the layers';
    problems.push(`${rel(file)}: imports ${rel(dep)} (${from} -> ${to}: ${why})`);
  }
}

// 2. circles: strongly connected components (Tarjan) of files and of folders
function cycles(nodes, edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges(v)) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp);
    }
  };
  for (const n of nodes) if (!idx.has(n)) visit(n);
  return out;
}
for (const c of cycles(files, (f) => (graph.get(f) ?? []).filter((d) => texts.has(d)))) problems.push(`import circle between files: ${c.map(rel).join(' <-> ')}`);
const folders = [...new Set(files.map(folderOf))];
const folderEdges = new Map(folders.map((f) => [f, new Set()]));
for (const [file, deps] of graph) for (const d of deps) if (texts.has(d) && folderOf(d) !== folderOf(file)) folderEdges.get(folderOf(file)).add(folderOf(d));
for (const c of cycles(folders, (f) => [...folderEdges.get(f)])) problems.push(`import circle between folders: ${c.join(' <-> ')}`);

// 3. elements never import elements
const ELEMENT_RE = /\b(?:readonly kind = '|get kind\(\): string \{)/;
const isElement = (f) => ELEMENT_RE.test(texts.get(f) ?? '');
for (const [file, deps] of graph) {
  if (folderOf(file) === 'dataplane' || folderOf(file) === 'core' || !isElement(file)) continue;
  for (const d of deps) if (d !== file && folderOf(d) !== 'core' && isElement(d)) problems.push(`${rel(file)}: an element imports another element (${rel(d)}); link them in the graph instead`);
}

// 4. every declared drop reason is counted somewhere
const declared = [];
for (const f of [join(SRC, 'core', 'drops.ts'), join(SRC, 'wire', 'drop.ts')]) {
  for (const m of texts.get(f).matchAll(/export const (DROP_[A-Z0-9_]+)\s*=/g)) if (m[1] !== 'DROP_OK' && m[1] !== 'DROP_REASON_COUNT' && m[1] !== 'DROP_REASON_NAMES') declared.push([m[1], f]);
}
for (const [name, where] of declared) {
  const used = files.some((f) => f !== where && f !== join(SRC, 'core', 'drops.ts') && new RegExp(`\\b${name}\\b`).test(texts.get(f)));
  if (!used) problems.push(`${rel(where)}: drop reason ${name} is declared but never counted (remove it or count it)`);
}

if (problems.length > 0) {
  process.stderr.write(`lint:layers: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`lint:layers: ${files.length} files in ${folders.length} folders: layers, circles, element imports and drop reasons ok\n`);
