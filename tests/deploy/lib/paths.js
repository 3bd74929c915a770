'use strict';
// Locations of the deployment files, from the repository root (two levels above this folder).
const path = require('node:path');

const root = path.resolve(__dirname, '..', '..', '..');

module.exports = {
  root,
  fromRoot: (...parts) => path.join(root, ...parts),
  rulesFile: path.join(root, 'deploy', 'prometheus', 'rules', 'histguard.rules.yml'),
  prometheusRuleFile: path.join(root, 'deploy', 'kubernetes', 'prometheusrule.yaml'),
  kustomizationDir: path.join(root, 'deploy', 'kubernetes'),
  dashboardsDir: path.join(root, 'deploy', 'grafana', 'dashboards'),
  composeFile: path.join(root, 'docker-compose.yml'),
  dockerfile: path.join(root, 'Dockerfile'),
  dockerignore: path.join(root, '.dockerignore'),
};
