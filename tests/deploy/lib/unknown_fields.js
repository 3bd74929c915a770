'use strict';
// Finds fields that a Kubernetes object's schema does not know (a misspelt
// `readOnlyRootFileSystem` passes the models' .validate(), whose schemas allow extra properties,
// and the API server would drop it). The field lists come from the TypeScript declarations that
// kubernetes-models and @kubernetes-models/* ship beside each model: a small reader of the subset
// of TypeScript they use (interfaces, type aliases, object literals, Array<>, unions, imports).
const fs = require('node:fs');
const path = require('node:path');

const nodeModules = path.resolve(__dirname, '..', 'node_modules');

// --- tokens -----------------------------------------------------------------------------------

function tokenize(text) {
  const src = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, ' ');
  const tokens = [];
  const re = /\s+|("(?:[^"\\]|\\.)*")|([A-Za-z_$][\w$]*)|(-?\d+(?:\.\d+)?)|(.)/g;
  let m;
  while ((m = re.exec(src)) !== null) {
    if (m[1]) tokens.push({ kind: 'string', value: JSON.parse(m[1]) });
    else if (m[2]) tokens.push({ kind: 'ident', value: m[2] });
    else if (m[3]) tokens.push({ kind: 'number', value: m[3] });
    else if (m[4]) tokens.push({ kind: 'punct', value: m[4] });
  }
  return tokens;
}

// --- types ------------------------------------------------------------------------------------
// { kind: 'object', props: Map(name -> type), index: type|null }
// { kind: 'array', of: type } | { kind: 'union', of: [type] } | { kind: 'ref', name, file }
// { kind: 'opaque' } for primitives, literals, any, object.

class Parser {
  constructor(tokens, file) {
    this.t = tokens;
    this.i = 0;
    this.file = file;
  }
  peek(o = 0) { return this.t[this.i + o]; }
  next() { return this.t[this.i++]; }
  is(value) { const k = this.peek(); return k !== undefined && k.value === value && k.kind !== 'string'; }
  expect(value) {
    const k = this.next();
    if (!k || k.value !== value) {
      throw new Error(`${this.file}: expected "${value}" at token ${this.i}, got ${k && k.value}`);
    }
  }

  type() {
    const members = [this.primaryWithSuffix()];
    while (this.is('|')) { this.next(); members.push(this.primaryWithSuffix()); }
    return members.length === 1 ? members[0] : { kind: 'union', of: members };
  }

  primaryWithSuffix() {
    let ty = this.primary();
    // `T["key"]` (indexed access) appears only in class declarations, which are not read.
    while (this.is('[') && this.peek(1) && this.peek(1).value === ']') {
      this.next(); this.next();
      ty = { kind: 'array', of: ty };
    }
    return ty;
  }

  primary() {
    const k = this.next();
    if (!k) throw new Error(`${this.file}: unexpected end of type`);
    if (k.kind === 'string' || k.kind === 'number') return { kind: 'opaque' };
    if (k.value === '(') { const ty = this.type(); this.expect(')'); return ty; }
    if (k.value === '{') return this.objectBody();
    if (k.kind === 'ident') {
      if (k.value === 'Array' && this.is('<')) {
        this.next();
        const of = this.type();
        this.expect('>');
        return { kind: 'array', of };
      }
      if (['string', 'number', 'boolean', 'any', 'unknown', 'object', 'null', 'undefined', 'true', 'false'].includes(k.value)) {
        return { kind: 'opaque' };
      }
      let name = k.value;
      while (this.is('.')) { this.next(); name += `.${this.next().value}`; }
      return { kind: 'ref', name, file: this.file };
    }
    throw new Error(`${this.file}: cannot read type at "${k.value}"`);
  }

  // After "{": members until "}".
  objectBody() {
    const props = new Map();
    let index = null;
    while (!this.is('}')) {
      if (this.is('[')) {
        // [key: string]: T;
        this.next(); this.next(); this.expect(':'); this.next(); this.expect(']'); this.expect(':');
        index = this.type();
      } else {
        const key = this.next();
        if (this.is('?')) this.next();
        this.expect(':');
        props.set(key.value, this.type());
      }
      if (this.is(';') || this.is(',')) this.next();
    }
    this.expect('}');
    return { kind: 'object', props, index };
  }
}

// --- declaration files ------------------------------------------------------------------------

const fileCache = new Map();

function resolveModule(fromFile, spec) {
  const base = spec.startsWith('.') ? path.resolve(path.dirname(fromFile), spec) : path.join(nodeModules, spec);
  for (const candidate of [`${base}.d.ts`, path.join(base, 'index.d.ts')]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  throw new Error(`${fromFile}: cannot find declarations of "${spec}"`);
}

// Reads the top-level declarations of one .d.ts: imports, interfaces, type aliases, re-exports.
function readDeclarations(file) {
  if (fileCache.has(file)) return fileCache.get(file);
  const decls = { types: new Map(), imports: new Map(), aliases: new Map() };
  fileCache.set(file, decls);
  const p = new Parser(tokenize(fs.readFileSync(file, 'utf8')), file);
  while (p.peek()) {
    const k = p.next();
    if (k.value === 'import' && p.is('{')) {
      p.next();
      const names = [];
      while (!p.is('}')) {
        const imported = p.next().value;
        let local = imported;
        if (p.is('as')) { p.next(); local = p.next().value; }
        names.push([imported, local]);
        if (p.is(',')) p.next();
      }
      p.expect('}');
      p.expect('from');
      const spec = p.next().value;
      for (const [imported, local] of names) decls.imports.set(local, { spec, imported });
    } else if (k.value === 'export' && p.is('{')) {
      p.next();
      while (!p.is('}')) {
        const local = p.next().value;
        let exported = local;
        if (p.is('as')) { p.next(); exported = p.next().value; }
        decls.aliases.set(exported, local);
        if (p.is(',')) p.next();
      }
      p.expect('}');
    } else if (k.value === 'interface') {
      const name = p.next().value;
      const bases = [];
      if (p.is('extends')) {
        p.next();
        bases.push(p.next().value);
        while (p.is(',')) { p.next(); bases.push(p.next().value); }
      }
      p.expect('{');
      const body = p.objectBody();
      body.bases = bases.map((b) => ({ kind: 'ref', name: b, file }));
      decls.types.set(name, body);
    } else if (k.value === 'type' && p.peek() && p.peek().kind === 'ident' && p.peek(1) && p.peek(1).value === '=') {
      const name = p.next().value;
      p.expect('=');
      decls.types.set(name, p.type());
    } else if (k.value === 'class') {
      // Skip class bodies (balanced braces): the interfaces carry the same fields.
      while (p.peek() && !p.is('{')) p.next();
      let depth = 0;
      do {
        const t = p.next();
        if (t.value === '{' && t.kind === 'punct') depth++;
        if (t.value === '}' && t.kind === 'punct') depth--;
      } while (depth > 0 && p.peek());
    }
  }
  return decls;
}

const TYPE_META = {
  kind: 'object',
  props: new Map([['apiVersion', { kind: 'opaque' }], ['kind', { kind: 'opaque' }]]),
  index: null,
};

// Folds the fields of `extends` bases into the object type itself.
function withBases(ty) {
  if (ty.kind !== 'object' || !ty.bases || ty.bases.length === 0) return ty;
  const props = new Map();
  for (const base of ty.bases) {
    const b = resolveRef(base);
    for (const [k, v] of b.props) props.set(k, v);
  }
  for (const [k, v] of ty.props) props.set(k, v);
  return { kind: 'object', props, index: ty.index };
}

function resolveRef(ref, seen = new Set()) {
  const key = `${ref.file}#${ref.name}`;
  if (seen.has(key)) throw new Error(`type cycle at ${key}`);
  seen.add(key);
  const decls = readDeclarations(ref.file);
  const local = decls.aliases.get(ref.name) || ref.name;
  if (decls.types.has(local)) {
    const ty = decls.types.get(local);
    return ty.kind === 'ref' ? resolveRef(ty, seen) : withBases(ty);
  }
  if (decls.imports.has(local)) {
    const { spec, imported } = decls.imports.get(local);
    // @kubernetes-models/base's TypeMeta is the only base interface the models extend; its
    // declarations use generics this reader does not follow.
    if (spec === '@kubernetes-models/base' && imported === 'TypeMeta') return TYPE_META;
    return resolveRef({ kind: 'ref', name: imported, file: resolveModule(ref.file, spec) }, seen);
  }
  throw new Error(`${ref.file}: unknown type ${ref.name}`);
}

// --- checking ---------------------------------------------------------------------------------

function check(value, type, where, problems) {
  if (value === null || value === undefined) return;
  if (type.kind === 'ref') { check(value, resolveRef(type), where, problems); return; }
  if (type.kind === 'union') {
    const objects = type.of.map((t) => (t.kind === 'ref' ? resolveRef(t) : t));
    const fit = objects.find((t) => (Array.isArray(value) ? t.kind === 'array' : typeof value === 'object' && t.kind === 'object'));
    if (fit) check(value, fit, where, problems);
    return;
  }
  if (type.kind === 'array') {
    if (Array.isArray(value)) value.forEach((v, i) => check(v, type.of, `${where}[${i}]`, problems));
    return;
  }
  if (type.kind === 'object' && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (type.props.has(k)) check(v, type.props.get(k), `${where}.${k}`, problems);
      else if (type.index) check(v, type.index, `${where}.${k}`, problems);
      else problems.push(`${where}.${k}: unknown field`);
    }
  }
}

// `declarationFile` is the model's .d.ts (e.g. kubernetes-models/apps/v1/StatefulSet.d.ts);
// its interface is I<kind>. Returns a list of "path: unknown field" strings.
function unknownFields(doc, declarationFile) {
  const problems = [];
  check(doc, { kind: 'ref', name: `I${doc.kind}`, file: declarationFile }, doc.kind, problems);
  return problems;
}

module.exports = { unknownFields };
