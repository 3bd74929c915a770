#!/usr/bin/env node
'use strict';
// Checks deploy/kubernetes offline: every document kustomization.yaml lists is valid against the
// Kubernetes / Prometheus Operator schemas (kubernetes-models) and has no field those schemas do
// not know; the PrometheusRule carries exactly the groups of the plain rules file; and the
// settings the daemon depends on hold (gRPC probes, non-root read-only container, grace period
// longer than the drain timeout, thresholds matching the alert rules).
// Usage: node tests/deploy/check_kubernetes.js
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const YAML = require('yaml');
const paths = require('./lib/paths');
const { load } = require('./lib/kustomization');
const { unknownFields } = require('./lib/unknown_fields');

const GRPC_PORT = 50051;
const METRICS_PORT = 9650;
const DATA_DIR = '/var/lib/histguard';
const CONFIG_PATH = '/etc/histguard/histguard.yaml';
// Keys histguardd accepts in --config (its flag names with "_" for "-"): read from the daemon's
// own table in server/config.cc where the sources are present, else the documented ones.
function daemonKeys() {
  const source = paths.fromRoot('server', 'config.cc');
  if (fs.existsSync(source)) {
    const keys = [...fs.readFileSync(source, 'utf8').matchAll(/\bMake\(\s*"([a-z_]+)"/g)].map((m) => m[1]);
    if (keys.length > 0) return new Set([...keys, 'thresholds']);
  }
  return new Set([
    'listen', 'metrics_listen', 'data_dir', 'scoring_threads', 'train_threads', 'compute_threads',
    'warning_p', 'bad_p', 'min_entries', 'min_train_samples', 'max_monitors', 'max_bins',
    'drain_timeout_seconds', 'thresholds',
  ]);
}
const DAEMON_KEYS = daemonKeys();

// apiVersion -> module folder holding one model (and its .d.ts) per kind.
const MODEL_MODULES = {
  v1: 'kubernetes-models/v1',
  'apps/v1': 'kubernetes-models/apps/v1',
  'networking.k8s.io/v1': 'kubernetes-models/networking.k8s.io/v1',
  'monitoring.coreos.com/v1': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1',
};

const { kustomization, documents, usedFiles } = load(paths.kustomizationDir);
const byKind = (kind) => documents.filter((d) => d.doc.kind === kind).map((d) => d.doc);
const one = (kind) => {
  const found = byKind(kind);
  assert.equal(found.length, 1, `expected exactly one ${kind}, found ${found.length}`);
  return found[0];
};
const label = (d) => `${d.doc.kind}/${d.doc.metadata && d.doc.metadata.name} (${d.source})`;

function cpu(q) {
  const s = String(q);
  return s.endsWith('m') ? Number(s.slice(0, -1)) / 1000 : Number(s);
}

function matches(selector, labels) {
  return Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);
}

test('kustomization lists every manifest in the folder and is namespace-agnostic', () => {
  const onDisk = fs.readdirSync(paths.kustomizationDir).filter((f) => /\.ya?ml$/.test(f));
  for (const f of onDisk) assert.ok(usedFiles.has(f), `${f} is in deploy/kubernetes but kustomization.yaml does not use it`);
  assert.equal(kustomization.namespace, undefined, 'kustomization.yaml must not set a namespace');
  for (const d of documents) {
    assert.equal(d.doc.metadata && d.doc.metadata.namespace, undefined, `${label(d)} names a namespace`);
  }
  const kinds = documents.map((d) => d.doc.kind).sort();
  assert.deepEqual(kinds, ['ConfigMap', 'NetworkPolicy', 'PrometheusRule', 'Service', 'Service', 'ServiceMonitor', 'StatefulSet']);
});

for (const d of documents) {
  test(`schema: ${label(d)}`, () => {
    const dir = MODEL_MODULES[d.doc.apiVersion];
    assert.ok(dir, `no model for apiVersion ${d.doc.apiVersion}`);
    const modulePath = require.resolve(`${dir}/${d.doc.kind}`);
    const Model = require(modulePath)[d.doc.kind];
    assert.ok(Model, `no model class for ${d.doc.apiVersion} ${d.doc.kind}`);
    const model = new Model(d.doc);
    model.validate(); // throws with the failing path
    assert.ok(Model.is(model), 'apiVersion/kind do not match the model');
    const declarations = modulePath.replace(/\.js$/, '.d.ts');
    assert.deepEqual(unknownFields(d.doc, declarations), [], 'fields unknown to the schema');
  });
}

test('schema check catches a misspelt field', () => {
  const sts = structuredClone(one('StatefulSet'));
  sts.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem = true;
  const problems = unknownFields(sts, require.resolve('kubernetes-models/apps/v1/StatefulSet').replace(/\.js$/, '.d.ts'));
  assert.deepEqual(problems, ['StatefulSet.spec.template.spec.containers[0].securityContext.readOnlyRootFileSystem: unknown field']);
  const { StatefulSet } = require('kubernetes-models/apps/v1/StatefulSet');
  delete sts.spec.template.spec.containers[0].livenessProbe.httpGet.port;  // required
  assert.throws(() => new StatefulSet(sts).validate(), /port/);
});

test('PrometheusRule groups are exactly the groups of deploy/prometheus/rules/histguard.rules.yml', () => {
  const rules = YAML.parse(fs.readFileSync(paths.rulesFile, 'utf8'));
  const pr = one('PrometheusRule');
  assert.deepEqual(pr.spec.groups, rules.groups,
    'out of sync: run `node tests/deploy/sync_prometheusrule.js`');
});

const sts = one('StatefulSet');
const pod = sts.spec.template.spec;
const container = pod.containers.find((c) => c.name === 'histguard');
const configMap = one('ConfigMap');

test('StatefulSet: one replica, data dir on a claim from volumeClaimTemplates', () => {
  assert.equal(sts.spec.replicas, 1);
  assert.ok(container, 'no container named histguard');
  const dataMount = container.volumeMounts.find((m) => m.mountPath === DATA_DIR);
  assert.ok(dataMount, `nothing mounted on ${DATA_DIR}`);
  const claim = (sts.spec.volumeClaimTemplates || []).find((t) => t.metadata.name === dataMount.name);
  assert.ok(claim, `${DATA_DIR} is not a volumeClaimTemplate`);
  assert.ok(claim.spec.resources.requests.storage, 'claim has no storage request');
  assert.ok(matches(sts.spec.selector.matchLabels, sts.spec.template.metadata.labels), 'selector does not match the pod template');
});

test('StatefulSet: liveness, readiness (and startup) probes are HTTPS /healthz on 9650', () => {
  // The kubelet's gRPC probe speaks no TLS; /healthz needs no token and says 503 while draining.
  for (const kind of ['livenessProbe', 'readinessProbe']) {
    assert.ok(container[kind], `no ${kind}`);
  }
  const ports = new Map(container.ports.map((p) => [p.name, p.containerPort]));
  for (const kind of ['livenessProbe', 'readinessProbe', 'startupProbe']) {
    const probe = container[kind];
    if (!probe) continue;
    assert.deepEqual(Object.keys(probe).filter((k) => ['grpc', 'httpGet', 'tcpSocket', 'exec'].includes(k)), ['httpGet'], `${kind} is not an HTTP probe`);
    assert.equal(probe.httpGet.path, '/healthz');
    assert.equal(probe.httpGet.scheme, 'HTTPS', `${kind} must use HTTPS: the port serves TLS`);
    const port = typeof probe.httpGet.port === 'string' ? ports.get(probe.httpGet.port) : probe.httpGet.port;
    assert.equal(port, METRICS_PORT, `${kind} port`);
  }
  assert.deepEqual(container.ports.map((p) => [p.name, p.containerPort]).sort(), [['grpc', GRPC_PORT], ['metrics', METRICS_PORT]]);
});

test('StatefulSet: non-root, read-only root filesystem, no privilege escalation, no capabilities', () => {
  const podSc = pod.securityContext || {};
  const sc = container.securityContext || {};
  assert.equal(sc.runAsNonRoot ?? podSc.runAsNonRoot, true, 'runAsNonRoot');
  assert.equal(sc.runAsUser ?? podSc.runAsUser, 10001, 'runAsUser (the image user)');
  assert.equal(sc.readOnlyRootFilesystem, true, 'readOnlyRootFilesystem');
  assert.equal(sc.allowPrivilegeEscalation, false, 'allowPrivilegeEscalation');
  assert.deepEqual(sc.capabilities && sc.capabilities.drop, ['ALL'], 'capabilities.drop');
  assert.equal(sc.privileged, undefined);
  const tmp = container.volumeMounts.find((m) => m.mountPath === '/tmp');
  assert.ok(tmp, 'no writable /tmp');
  const vol = pod.volumes.find((v) => v.name === tmp.name);
  assert.ok(vol && vol.emptyDir, '/tmp is not an emptyDir');
});

test('StatefulSet: resources match one scoring and one training thread', () => {
  const { requests, limits } = container.resources;
  assert.equal(cpu(requests.cpu), 2);
  assert.equal(cpu(limits.cpu), 2);
  assert.equal(requests.memory, '2Gi');
  assert.equal(limits.memory, '4Gi');
  const env = Object.fromEntries((container.env || []).map((e) => [e.name, e.value]));
  assert.equal(env.OMP_NUM_THREADS, '1');
  assert.equal(env.OPENBLAS_NUM_THREADS, '1');
  const cfg = YAML.parse(configMap.data['histguard.yaml']);
  const threads = (cfg.scoring_threads ?? 1) + (cfg.train_threads ?? 1) * (cfg.compute_threads ?? 1);
  assert.ok(threads <= cpu(limits.cpu), `${threads} busy threads for ${limits.cpu} CPUs`);
});

test('ConfigMap: mounted and passed with --config; only keys the daemon knows', () => {
  const args = container.args || [];
  const i = args.indexOf('--config');
  assert.ok(i >= 0 && args[i + 1] === CONFIG_PATH, `args must pass --config ${CONFIG_PATH}: ${args}`);
  const mount = container.volumeMounts.find((m) => m.mountPath === path.dirname(CONFIG_PATH));
  assert.ok(mount, `nothing mounted on ${path.dirname(CONFIG_PATH)}`);
  assert.equal(mount.readOnly, true);
  const vol = pod.volumes.find((v) => v.name === mount.name);
  assert.equal(vol.configMap && vol.configMap.name, configMap.metadata.name);
  assert.ok(path.basename(CONFIG_PATH) in configMap.data, `ConfigMap has no ${path.basename(CONFIG_PATH)}`);
  const cfg = YAML.parse(configMap.data['histguard.yaml']);
  for (const key of Object.keys(cfg)) assert.ok(DAEMON_KEYS.has(key), `unknown daemon setting ${key}`);
  assert.equal(cfg.listen, `0.0.0.0:${GRPC_PORT}`);
  assert.equal(cfg.metrics_listen, `0.0.0.0:${METRICS_PORT}`);
  if ('data_dir' in cfg) assert.equal(cfg.data_dir, DATA_DIR);
});

test('TLS and the token file come from Secrets mounted where the ConfigMap points', () => {
  const cfg = YAML.parse(configMap.data['histguard.yaml']);
  assert.ok(cfg.tls_cert && cfg.tls_key && cfg.token_file, 'the daemon is configured without TLS or tokens');
  assert.ok(!cfg.insecure, 'insecure must not be set');
  for (const file of [cfg.tls_cert, cfg.tls_key, cfg.token_file]) {
    const mount = container.volumeMounts.find((m) => path.dirname(file) === m.mountPath);
    assert.ok(mount, `nothing mounted for ${file}`);
    assert.equal(mount.readOnly, true);
    const vol = pod.volumes.find((v) => v.name === mount.name);
    const items = (vol.projected ? vol.projected.sources.map((s) => s.secret) : [vol.secret])
      .filter(Boolean).flatMap((s) => (s.items || []).map((i) => ({ secret: s.name, path: i.path })));
    assert.ok(items.some((i) => i.path === path.basename(file)), `${file} is not taken from a Secret`);
  }
});

test('ServiceMonitor scrapes over HTTPS with a token; the NetworkPolicy admits only the two ports', () => {
  const sm = one('ServiceMonitor');
  for (const ep of sm.spec.endpoints) {
    assert.equal(ep.scheme, 'https');
    assert.ok(ep.tlsConfig && ep.tlsConfig.ca && ep.tlsConfig.ca.secret, 'no CA to verify the daemon');
    assert.ok(ep.authorization && ep.authorization.credentials, 'no token for /metrics');
  }
  const np = one('NetworkPolicy');
  assert.ok(matches(np.spec.podSelector.matchLabels, sts.spec.template.metadata.labels), 'NetworkPolicy selects no histguard pod');
  assert.deepEqual(np.spec.policyTypes, ['Ingress']);
  const ports = np.spec.ingress.flatMap((r) => r.ports.map((p) => p.port)).sort();
  assert.deepEqual([...new Set(ports)], [METRICS_PORT, GRPC_PORT].sort());
  for (const rule of np.spec.ingress) assert.ok(rule.from && rule.from.length > 0, 'an ingress rule open to every source');
});

test('terminationGracePeriodSeconds is longer than the drain timeout in the ConfigMap', () => {
  const cfg = YAML.parse(configMap.data['histguard.yaml']);
  const drain = cfg.drain_timeout_seconds ?? 10; // the daemon's default
  assert.equal(typeof drain, 'number');
  assert.ok(pod.terminationGracePeriodSeconds > drain,
    `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} <= drain_timeout_seconds ${drain}`);
});

// The ConfigMap's thresholds (global and per pattern) reach the alerts through the daemon: BAD is
// counted from its verdicts, WARNING compared with each monitor's exported threshold. A fixed
// level in a rule would disagree with any monitor whose thresholds differ.
test('alert rules take quality from the daemon, not from fixed significance levels', () => {
  const rules = YAML.parse(fs.readFileSync(paths.rulesFile, 'utf8'));
  const all = rules.groups.flatMap((g) => g.rules);
  const bad = all.find((r) => r.alert === 'HistguardMonitorBad');
  const sub = all.find((r) => r.alert === 'HistguardSubsystemAnomalous');
  assert.match(bad.expr, /histguard_monitor_verdicts_total\{quality="bad"\}/);
  assert.match(sub.expr, /histguard_monitor_threshold_significance\{quality="warning"\}/);
  for (const r of all) {
    assert.doesNotMatch(r.expr, /histguard_anomaly_significance\s*[<>]=?\s*[0-9]/,
      `${r.alert} compares the significance with a fixed level`);
  }
});

test('Services: headless governing service and client service on grpc 50051 / metrics 9650', () => {
  const services = byKind('Service');
  const headless = services.find((s) => s.spec.clusterIP === 'None');
  const client = services.find((s) => s.spec.clusterIP !== 'None');
  assert.ok(headless, 'no headless Service');
  assert.ok(client, 'no client Service');
  assert.equal(sts.spec.serviceName, headless.metadata.name, 'StatefulSet serviceName is not the headless Service');
  const containerPorts = new Map(container.ports.map((p) => [p.name, p.containerPort]));
  for (const svc of [headless, client]) {
    assert.ok(matches(svc.spec.selector, sts.spec.template.metadata.labels), `${svc.metadata.name} selects no histguard pod`);
    const ports = Object.fromEntries(svc.spec.ports.map((p) => [p.name, p]));
    assert.equal(ports.grpc.port, GRPC_PORT);
    assert.equal(ports.metrics.port, METRICS_PORT);
    for (const p of svc.spec.ports) {
      const target = typeof p.targetPort === 'string' ? containerPorts.get(p.targetPort) : p.targetPort;
      assert.equal(target, p.port, `${svc.metadata.name} port ${p.name} does not reach the container port`);
    }
  }
});

test('ServiceMonitor scrapes /metrics of the client Service only, as job "histguard"', () => {
  const sm = one('ServiceMonitor');
  const services = byKind('Service');
  const selected = services.filter((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
  assert.equal(selected.length, 1, `ServiceMonitor selects ${selected.length} Services; each pod would be scraped that often`);
  const [svc] = selected;
  assert.notEqual(svc.spec.clusterIP, 'None');
  for (const ep of sm.spec.endpoints) {
    assert.ok(svc.spec.ports.some((p) => p.name === ep.port), `endpoint port ${ep.port} not on Service ${svc.metadata.name}`);
    assert.equal(ep.path || '/metrics', '/metrics');
  }
  // The rules (HistguardDown) expect job="histguard".
  const job = sm.spec.jobLabel ? svc.metadata.labels[sm.spec.jobLabel] : svc.metadata.name;
  assert.equal(job, 'histguard');
});

test('kubectl kustomize renders the same objects (when kubectl is installed)', (t) => {
  let out;
  try {
    out = execFileSync('kubectl', ['kustomize', paths.kustomizationDir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    if (e.code === 'ENOENT') { t.skip('kubectl not installed'); return; }
    throw new Error(`kubectl kustomize failed: ${e.stderr || e.message}`);
  }
  const rendered = YAML.parseAllDocuments(out).map((d) => d.toJS()).filter(Boolean);
  const key = (doc) => `${doc.kind}/${doc.metadata.name.replace(/^(histguard-config)-[a-z0-9]{10}$/, '$1')}`;
  assert.deepEqual(rendered.map(key).sort(), documents.map((d) => key(d.doc)).sort());
  const renderedSts = rendered.find((d) => d.kind === 'StatefulSet');
  const renderedCm = rendered.find((d) => d.kind === 'ConfigMap');
  const vol = renderedSts.spec.template.spec.volumes.find((v) => v.configMap);
  assert.equal(vol.configMap.name, renderedCm.metadata.name, 'ConfigMap name reference not rewritten');
  assert.match(renderedSts.spec.template.spec.containers[0].image, /^histguard:[^:]+$/);
  assert.doesNotMatch(renderedSts.spec.template.spec.containers[0].image, /:latest$/);
});
