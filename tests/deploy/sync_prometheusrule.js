#!/usr/bin/env node
'use strict';
// Writes deploy/kubernetes/prometheusrule.yaml from deploy/prometheus/rules/histguard.rules.yml,
// so the Kubernetes PrometheusRule carries exactly the groups of the plain rules file.
// Usage: node tests/deploy/sync_prometheusrule.js   (check_kubernetes.js tests the result)
const fs = require('node:fs');
const YAML = require('yaml');
const paths = require('./lib/paths');

function render() {
  const rules = YAML.parse(fs.readFileSync(paths.rulesFile, 'utf8'));
  const doc = {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: 'histguard',
      labels: { 'app.kubernetes.io/name': 'histguard' },
    },
    spec: { groups: rules.groups },
  };
  const header = [
    '# Generated from deploy/prometheus/rules/histguard.rules.yml by',
    '# `node tests/deploy/sync_prometheusrule.js`: edit the rules file, then run it.',
    '# Many operator installs only pick up rules carrying their own label (e.g. `release`):',
    '# add it in an overlay.',
  ].join('\n');
  return `${header}\n${YAML.stringify(doc, { lineWidth: 0, blockQuote: 'literal' })}`;
}

if (require.main === module) {
  fs.writeFileSync(paths.prometheusRuleFile, render());
  console.log(`wrote ${paths.prometheusRuleFile}`);
}

module.exports = { render };
