'use strict';
// Loads the documents a kustomization.yaml lists, without kustomize: its `resources` (local
// files only) and the ConfigMaps of its `configMapGenerator` (files only). Enough for the
// plain base in deploy/kubernetes; overlays are rendered by kustomize itself.
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');

function parseAll(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'));
  const out = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    const js = d.toJS();
    if (js !== null && js !== undefined) out.push(js);
  }
  return out;
}

function load(dir) {
  const kustomizationFile = path.join(dir, 'kustomization.yaml');
  const [kustomization] = parseAll(kustomizationFile);
  const documents = [];
  const usedFiles = new Set(['kustomization.yaml']);

  for (const entry of kustomization.resources || []) {
    const file = path.join(dir, entry);
    if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
      throw new Error(`kustomization resource ${entry} is not a file in ${dir}`);
    }
    usedFiles.add(entry);
    for (const doc of parseAll(file)) documents.push({ source: entry, doc });
  }

  for (const gen of kustomization.configMapGenerator || []) {
    const data = {};
    for (const entry of gen.files || []) {
      const [key, rel] = entry.includes('=') ? entry.split('=', 2) : [path.basename(entry), entry];
      const file = path.join(dir, rel);
      if (!fs.existsSync(file)) throw new Error(`configMapGenerator ${gen.name}: missing file ${rel}`);
      usedFiles.add(rel);
      data[key] = fs.readFileSync(file, 'utf8');
    }
    for (const literal of gen.literals || []) {
      const [key, value] = literal.split('=', 2);
      data[key] = value;
    }
    documents.push({
      source: `configMapGenerator ${gen.name}`,
      doc: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: gen.name }, data },
    });
  }

  return { kustomization, documents, usedFiles };
}

module.exports = { load, parseAll };
