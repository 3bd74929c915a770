#!/usr/bin/env node
'use strict';
// Checks docker-compose.yml without Docker: it parses as YAML, every bind mount and build
// context points at files in the repository, named volumes are declared, images are pinned,
// and the mounted Prometheus/Grafana files are where their configurations expect them.
// Usage: node tests/deploy/check_compose.js
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');
const paths = require('./lib/paths');

const composeDir = path.dirname(paths.composeFile);
const doc = YAML.parseDocument(fs.readFileSync(paths.composeFile, 'utf8'));
const compose = doc.toJS();

// Short syntax "SOURCE:TARGET[:MODE]" or long syntax {type, source, target}.
function mounts(service) {
  return (service.volumes || []).map((v) => {
    if (typeof v === 'string') {
      const [source, target, mode] = v.split(':');
      const bind = source.startsWith('.') || source.startsWith('/') || source.startsWith('~');
      return { type: bind ? 'bind' : 'volume', source, target, readOnly: mode === 'ro' };
    }
    return { type: v.type, source: v.source, target: v.target, readOnly: Boolean(v.read_only) };
  });
}

const hostPath = (source) => path.resolve(composeDir, source);
const inContainer = (service, containerPath) => {
  // Maps a path inside the container back to the repository through the service's bind mounts;
  // the deepest mount wins, as in the container.
  let best = null;
  for (const m of mounts(service)) {
    if (m.type !== 'bind') continue;
    if (containerPath === m.target || containerPath.startsWith(`${m.target}/`)) {
      if (!best || m.target.length > best.target.length) best = m;
    }
  }
  return best && path.join(hostPath(best.source), path.relative(best.target, containerPath));
};

test('docker-compose.yml parses as YAML', () => {
  assert.deepEqual(doc.errors, []);
  assert.ok(compose.services, 'no services');
  assert.deepEqual(Object.keys(compose.services).sort(), ['grafana', 'histguard', 'prometheus']);
});

test('bind mounts point at files in the repository; named volumes are declared', () => {
  for (const [name, service] of Object.entries(compose.services)) {
    for (const m of mounts(service)) {
      if (m.type === 'bind') {
        assert.ok(!path.isAbsolute(m.source), `${name}: ${m.source} is a host path outside the repository`);
        assert.ok(fs.existsSync(hostPath(m.source)), `${name}: mount source ${m.source} does not exist`);
        assert.ok(m.readOnly, `${name}: ${m.source} should be mounted read-only`);
      } else {
        assert.ok(compose.volumes && m.source in compose.volumes, `${name}: volume ${m.source} is not declared`);
      }
    }
  }
});

test('histguard: built from the Dockerfile, ports 50051/9650, data on a named volume', () => {
  const h = compose.services.histguard;
  const context = typeof h.build === 'string' ? h.build : h.build.context;
  const dockerfile = (h.build && h.build.dockerfile) || 'Dockerfile';
  assert.ok(fs.existsSync(path.join(hostPath(context), dockerfile)), 'Dockerfile not found');
  const ports = (h.ports || []).map(String);
  assert.ok(ports.includes('50051:50051'), 'gRPC port not published');
  assert.ok(ports.includes('9650:9650'), 'metrics port not published');
  const data = mounts(h).find((m) => m.target === '/var/lib/histguard');
  assert.ok(data && data.type === 'volume', '/var/lib/histguard is not a named volume');
  const grace = /^(\d+)s$/.exec(h.stop_grace_period || '');
  assert.ok(grace && Number(grace[1]) > 10, 'stop_grace_period must exceed the 10 s drain timeout');
});

test('images are pinned, never "latest"', () => {
  for (const [name, service] of Object.entries(compose.services)) {
    if (!service.image) continue;
    const tag = service.image.includes('@') ? 'digest' : service.image.split(':')[1];
    assert.ok(tag && tag !== 'latest', `${name}: image ${service.image} is not pinned`);
  }
  assert.match(compose.services.prometheus.image, /^prom\/prometheus:v\d+\.\d+\.\d+$/);
  assert.match(compose.services.grafana.image, /^grafana\/grafana:\d+\.\d+\.\d+$/);
});

test('prometheus: the config it is given exists, its rule files resolve, it scrapes histguard:9650', () => {
  const p = compose.services.prometheus;
  const flag = (p.command || []).find((c) => c.startsWith('--config.file='));
  assert.ok(flag, 'no --config.file');
  const configInContainer = flag.split('=')[1];
  const configOnHost = inContainer(p, configInContainer);
  assert.ok(configOnHost && fs.existsSync(configOnHost), `${configInContainer} is not mounted from the repository`);
  const config = YAML.parse(fs.readFileSync(configOnHost, 'utf8'));
  for (const rf of config.rule_files || []) {
    const resolved = path.resolve(path.dirname(configOnHost), rf);
    assert.ok(fs.existsSync(resolved), `rule file ${rf} does not resolve next to the config`);
    assert.ok(!/\*/.test(rf), `rule file glob ${rf} would also load the unit tests`);
  }
  const job = config.scrape_configs.find((s) => s.job_name === 'histguard');
  assert.ok(job, 'no scrape job "histguard"');
  const targets = job.static_configs.flatMap((s) => s.targets);
  assert.deepEqual(targets, ['histguard:9650']);
});

// The files scripts/make-secrets.sh writes (deploy/secrets holds them once it has run).
const SECRETS = (() => {
  const script = fs.readFileSync(hostPath('scripts/make-secrets.sh'), 'utf8');
  const names = new Set(['ca.pem', 'tls.crt', 'tls.key', 'tokens']);
  for (const n of names) assert.ok(script.includes(n), `scripts/make-secrets.sh does not write ${n}`);
  for (const role of ['ingest', 'read', 'operator']) {
    assert.ok(/for role in ingest read operator/.test(script), 'make-secrets.sh does not make the role tokens');
    names.add(`${role}.token`);
  }
  return names;
})();
const secretOnHost = (service, containerPath) => {
  const host = inContainer(service, containerPath);
  assert.ok(host, `${containerPath} is not mounted into ${service === compose.services.histguard ? 'histguard' : 'prometheus'}`);
  assert.equal(path.dirname(host), hostPath('deploy/secrets'), `${containerPath} is not from deploy/secrets`);
  assert.ok(SECRETS.has(path.basename(host)), `${path.basename(host)} is not a file make-secrets.sh writes`);
  return host;
};

test('histguard: TLS with a token file from deploy/secrets, on all addresses', () => {
  const h = compose.services.histguard;
  const value = (flag) => ((h.command || []).find((c) => c.startsWith(`${flag}=`)) || '').split('=')[1];
  assert.equal(value('--listen'), '0.0.0.0:50051');
  assert.equal(value('--metrics-listen'), '0.0.0.0:9650');
  for (const flag of ['--tls-cert', '--tls-key', '--token-file']) {
    assert.ok(value(flag), `histguard is started without ${flag}`);
    secretOnHost(h, value(flag));
  }
  assert.ok(!(h.command || []).includes('--insecure'), 'compose must not run histguard with --insecure');
});

test('prometheus: scrapes histguard over HTTPS with the read token', () => {
  const p = compose.services.prometheus;
  const configInContainer = (p.command || []).find((c) => c.startsWith('--config.file=')).split('=')[1];
  const config = YAML.parse(fs.readFileSync(inContainer(p, configInContainer), 'utf8'));
  const job = config.scrape_configs.find((s) => s.job_name === 'histguard');
  assert.equal(job.scheme, 'https');
  const inConfigDir = (f) => path.posix.resolve(path.posix.dirname(configInContainer), f);
  secretOnHost(p, inConfigDir(job.tls_config.ca_file));
  assert.equal(path.basename(job.tls_config.ca_file), 'ca.pem');
  secretOnHost(p, inConfigDir(job.authorization.credentials_file));
  assert.equal(path.basename(job.authorization.credentials_file), 'read.token');
});

test('grafana: provisioning and dashboards mounted where the provider looks; anonymous viewers', () => {
  const g = compose.services.grafana;
  const provisioning = inContainer(g, '/etc/grafana/provisioning');
  assert.ok(provisioning && fs.existsSync(path.join(provisioning, 'datasources', 'prometheus.yml')), 'datasource not provisioned');
  const providerFile = path.join(provisioning, 'dashboards', 'histguard.yml');
  assert.ok(fs.existsSync(providerFile), 'dashboard provider not provisioned');
  const provider = YAML.parse(fs.readFileSync(providerFile, 'utf8'));
  for (const prov of provider.providers) {
    const dir = inContainer(g, prov.options.path);
    assert.ok(dir && fs.existsSync(dir), `provider path ${prov.options.path} is not mounted`);
    assert.ok(fs.readdirSync(dir).some((f) => f.endsWith('.json')), `no dashboards in ${prov.options.path}`);
  }
  const home = g.environment.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH;
  if (home) assert.ok(fs.existsSync(inContainer(g, home) || ''), `home dashboard ${home} not mounted`);
  assert.equal(String(g.environment.GF_AUTH_ANONYMOUS_ENABLED), 'true');
  assert.equal(g.environment.GF_AUTH_ANONYMOUS_ORG_ROLE, 'Viewer');
  const ds = YAML.parse(fs.readFileSync(path.join(provisioning, 'datasources', 'prometheus.yml'), 'utf8'));
  const url = new URL(ds.datasources[0].url);
  assert.ok(url.hostname in compose.services, `datasource host ${url.hostname} is not a compose service`);
});
