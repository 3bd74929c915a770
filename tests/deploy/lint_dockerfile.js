#!/usr/bin/env node
'use strict';
// Lints the top-level Dockerfile and .dockerignore (parsed with dockerfile-ast): pinned Debian
// base images, the build done by scripts/install-deps.sh and the documented CMake commands, a
// lean runtime stage running as uid 10001 with a HEALTHCHECK, and a build context that keeps
// every source the build needs.
// Usage: node tests/deploy/lint_dockerfile.js [DOCKERFILE]
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { DockerfileParser } = require('dockerfile-ast');
const paths = require('./lib/paths');

const dockerfilePath = process.argv[2] ? path.resolve(process.argv[2]) : paths.dockerfile;
const dockerfile = DockerfileParser.parse(fs.readFileSync(dockerfilePath, 'utf8'));

const RUNTIME_PACKAGES = [
  'ca-certificates', 'libgrpc++1.51', 'libprotobuf32', 'libtorch1.13', 'libopenblas0-pthread',
  'libprometheus-cpp-core1.0', 'libyaml-cpp0.7', 'librocksdb7.8', 'libssl3',
];
const BUILD_COMMANDS = [
  'cmake -S . -B build -DCMAKE_BUILD_TYPE=Release',
  'cmake --build build -j2',
  'cmake --install build',
];

// Stages: the instructions after each FROM.
const stages = [];
for (const ins of dockerfile.getInstructions()) {
  if (ins.getKeyword() === 'FROM') stages.push({ from: ins, instructions: [] });
  else if (stages.length) stages[stages.length - 1].instructions.push(ins);
}
const buildStage = stages[0];
const finalStage = stages[stages.length - 1];
const args = (ins) => ins.getArgumentsContent() || '';
const inStage = (stage, keyword) => stage.instructions.filter((i) => i.getKeyword() === keyword);
const runs = (stage) => inStage(stage, 'RUN').map(args);
const copiedFrom = (copy) => (copy.getFromFlag() ? copy.getFromFlag().getValue() : null);
const execForm = (ins) => {
  const text = args(ins).trim();
  assert.ok(text.startsWith('['), `${ins.getKeyword()} should use the exec form (JSON array): ${text}`);
  return JSON.parse(text);
};

test('multi-stage: a build stage and a runtime stage', () => {
  assert.ok(stages.length >= 2, 'expected at least two stages');
  assert.equal(buildStage.from.getBuildStage(), 'build');
});

test('base images are pinned Debian 12 images, never "latest"', () => {
  const dates = new Set();
  for (const { from } of stages) {
    const image = from.getImageName();
    const tag = from.getImageTag();
    const digest = from.getImageDigest();
    const stageNames = stages.map((s) => s.from.getBuildStage()).filter(Boolean);
    if (stageNames.includes(image)) continue; // FROM an earlier stage
    assert.equal(image, 'debian', `unexpected base image ${image}`);
    assert.notEqual(tag, 'latest');
    assert.ok(tag || digest, `${image} is not pinned (no tag or digest)`);
    if (!digest) {
      const m = /^bookworm-(\d{8})(-slim)?$/.exec(tag || '');
      assert.ok(m, `debian:${tag} is not a dated bookworm tag (bookworm-YYYYMMDD[-slim]) or a digest`);
      dates.add(m[1]);
    }
  }
  assert.match(buildStage.from.getImageTag() || '', /^bookworm-\d{8}$/, 'build stage: full debian:bookworm-DATE');
  assert.match(finalStage.from.getImageTag() || '', /^bookworm-\d{8}-slim$/, 'runtime stage: debian:bookworm-DATE-slim');
  assert.ok(dates.size <= 1, `build and runtime use different Debian snapshots: ${[...dates]}`);
});

test('build stage: scripts/install-deps.sh, then the documented CMake build and install', () => {
  const buildRuns = runs(buildStage).join(' && ');
  assert.match(buildRuns, /\bscripts\/install-deps\.sh\b/);
  const copies = inStage(buildStage, 'COPY').map(args);
  assert.ok(copies.some((c) => c.includes('scripts/install-deps.sh')), 'install-deps.sh is not copied in first');
  let last = -1;
  for (const cmd of BUILD_COMMANDS) {
    const at = buildRuns.indexOf(cmd);
    assert.ok(at >= 0, `build stage does not run "${cmd}"`);
    assert.ok(at > last, `"${cmd}" runs out of order`);
    last = at;
  }
  assert.ok(buildRuns.indexOf('install-deps.sh') < buildRuns.indexOf(BUILD_COMMANDS[0]));
});

test('runtime stage: runtime packages only, without recommends, apt lists removed', () => {
  const installs = runs(finalStage).filter((r) => /apt-get\s+install/.test(r));
  assert.ok(installs.length > 0, 'runtime stage installs no packages');
  const packages = new Set();
  for (const run of installs) {
    assert.match(run, /apt-get\s+update/, 'apt-get install without apt-get update in the same RUN');
    assert.match(run, /--no-install-recommends/);
    assert.match(run, /\s-y\b|--yes|--assume-yes/);
    assert.match(run, /rm -rf \/var\/lib\/apt\/lists\/\*/, 'apt lists are not removed in the same RUN');
    const after = run.split(/apt-get\s+install/)[1].split('&&')[0];
    for (const word of after.split(/\s+/)) if (word && !word.startsWith('-')) packages.add(word);
  }
  for (const p of RUNTIME_PACKAGES) assert.ok(packages.has(p), `runtime stage does not install ${p}`);
  for (const p of packages) {
    assert.doesNotMatch(p, /-dev$|^build-essential$|^cmake$|^g\+\+/, `build-only package ${p} in the runtime image`);
  }
  assert.ok(inStage(finalStage, 'COPY').some((c) => copiedFrom(c) === 'build'),
    'runtime stage copies nothing from the build stage');
});

test('runtime stage: non-root USER 10001', () => {
  const users = inStage(finalStage, 'USER').map(args);
  assert.ok(users.length > 0, 'final stage has no USER');
  const user = users[users.length - 1].split(':')[0];
  assert.notEqual(user, 'root');
  assert.notEqual(user, '0');
  assert.equal(user, '10001');
  // The USER comes after the last RUN: nothing runs as root after it is set.
  const all = finalStage.instructions.map((i) => i.getKeyword());
  assert.ok(all.lastIndexOf('USER') > all.lastIndexOf('RUN'), 'RUN after the final USER');
});

test('HEALTHCHECK runs `histguard health` against the local gRPC port over TLS', () => {
  const checks = inStage(finalStage, 'HEALTHCHECK').map(args);
  assert.equal(checks.length, 1, 'expected one HEALTHCHECK in the final stage');
  const cmd = checks[0].replace(/^.*?\bCMD\s+/, '');
  assert.ok(!/^NONE/.test(checks[0]), 'HEALTHCHECK NONE');
  const argv = cmd.trim().startsWith('[') ? JSON.parse(cmd) : cmd.split(/\s+/);
  assert.deepEqual(argv.slice(0, 4), ['histguard', 'health', '--address', '127.0.0.1:50051']);
  // The default command serves TLS: the check verifies the daemon with the mounted CA.
  const ca = argv.indexOf('--tls-ca');
  assert.ok(ca > 0 && argv[ca + 1] === '/etc/histguard-secrets/ca.pem', `no --tls-ca: ${argv}`);
});

test('ENTRYPOINT histguardd with the data dir; ports, volume and thread environment', () => {
  const [entrypoint] = inStage(finalStage, 'ENTRYPOINT');
  assert.ok(entrypoint, 'no ENTRYPOINT');
  const argv = execForm(entrypoint);
  assert.equal(argv[0], 'histguardd');
  const i = argv.indexOf('--data-dir');
  assert.ok(i > 0 && argv[i + 1] === '/var/lib/histguard', '--data-dir /var/lib/histguard missing');
  const exposed = inStage(finalStage, 'EXPOSE').flatMap((e) => args(e).split(/\s+/)).map((p) => p.split('/')[0]);
  assert.ok(exposed.includes('50051') && exposed.includes('9650'), `EXPOSE ${exposed}`);
  const volumes = inStage(finalStage, 'VOLUME').flatMap((v) => {
    const text = args(v).trim();
    return text.startsWith('[') ? JSON.parse(text) : text.split(/\s+/);
  });
  assert.ok(volumes.includes('/var/lib/histguard'), 'VOLUME /var/lib/histguard missing');
  const env = {};
  for (const e of inStage(finalStage, 'ENV')) for (const p of e.getProperties()) env[p.getName()] = p.getValue();
  assert.equal(env.OMP_NUM_THREADS, '1');
  assert.equal(env.OPENBLAS_NUM_THREADS, '1');
});

test('no downloads outside apt, no ADD', () => {
  for (const stage of stages) {
    assert.equal(inStage(stage, 'ADD').length, 0, 'use COPY, not ADD');
    for (const run of runs(stage)) assert.doesNotMatch(run, /\b(curl|wget)\b/, `download in RUN: ${run}`);
  }
});

// --- .dockerignore ------------------------------------------------------------------------------

// Docker's .dockerignore matching, enough for the patterns used here: "**", "*", "?", a
// trailing "/" and "!" exceptions; a pattern matching a folder excludes everything under it.
function ignoreMatcher(lines) {
  const rules = lines
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, '').replace(/\/+$/, ''));
      const re = pattern
        .split('/')
        .map((part) => (part === '**' ? '(?:.*)' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')))
        .join('/')
        .replace(/\(\?:\.\*\)\//g, '(?:.*/)?');
      return { negate, re: new RegExp(`^${re}(?:/.*)?$`) };
    });
  return (file) => {
    let ignored = false;
    for (const r of rules) if (r.re.test(file)) ignored = !r.negate;
    return ignored;
  };
}

test('.dockerignore keeps the sources and drops build output, VCS data and node_modules', () => {
  assert.ok(fs.existsSync(paths.dockerignore), '.dockerignore missing');
  const ignored = ignoreMatcher(fs.readFileSync(paths.dockerignore, 'utf8').split('\n'));
  for (const kept of ['CMakeLists.txt', 'scripts/install-deps.sh', 'proto/histguard/v1/histguard.proto',
    'server/main.cc', 'models/autoencoder.cc', 'client/cli.cc', 'tests/deploy/CMakeLists.txt',
    'deploy/prometheus/prometheus.yml']) {
    assert.ok(!ignored(kept), `${kept} would be left out of the build context`);
  }
  for (const dropped of ['.git/HEAD', 'build/CMakeCache.txt', 'tests/deploy/node_modules/yaml/package.json',
    'var/histguard/models/x']) {
    assert.ok(ignored(dropped), `${dropped} would be sent to the build`);
  }
  // Whatever the Dockerfile COPYs by name must be in the context.
  for (const stage of stages) {
    for (const c of inStage(stage, 'COPY')) {
      if (copiedFrom(c)) continue;
      const parts = c.getArguments().map((a) => a.getValue());
      for (const src of parts.slice(0, -1)) {
        if (src === '.') continue;
        assert.ok(fs.existsSync(paths.fromRoot(src)), `COPY source ${src} does not exist`);
        assert.ok(!ignored(src), `COPY source ${src} is excluded by .dockerignore`);
      }
    }
  }
});
