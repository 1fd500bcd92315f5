import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { TempProject } from './helpers.js';

const PIPELINE = `pipeline: g
params:
  greeting: hello
stages:
  a: { uses: shell, with: { cmd: 'echo "\${params.greeting}" > $ABLATE_OUT/a.txt', outs: [a.txt] } }
  b: { uses: shell, in: { x: a }, with: { cmd: 'cat $ABLATE_IN_X/a.txt > $ABLATE_OUT/b.txt; echo done > $ABLATE_OUT/c.txt', outs: [b.txt, c.txt] } }
`;

interface TarEntry {
  readonly name: string;
  readonly content?: Buffer | string;
  /** '0' file, '2' symlink, '5' directory. */
  readonly type?: string;
  readonly link?: string;
}

/** A ustar archive written by hand, so a test can put in it what no honest tool would. */
function ustar(entries: readonly TarEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const content = Buffer.from(e.content ?? '');
    const header = Buffer.alloc(512);
    const field = (offset: number, length: number, value: string) => header.write(value, offset, length, 'utf8');
    const octal = (offset: number, length: number, value: number) => field(offset, length, value.toString(8).padStart(length - 1, '0'));
    field(0, 100, e.name);
    octal(100, 8, 0o644);
    octal(108, 8, 0);
    octal(116, 8, 0);
    octal(124, 12, content.length);
    octal(136, 12, 0);
    header.fill(' ', 148, 156);
    field(156, 1, e.type ?? '0');
    field(157, 100, e.link ?? '');
    field(257, 6, 'ustar');
    field(263, 2, '00');
    let sum = 0;
    for (const byte of header) sum += byte;
    field(148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512));
  }
  return Buffer.concat([...blocks, Buffer.alloc(1024)]);
}

/** The entries of a ustar archive (what these tests and node-tar's portable output use). */
function untar(archive: Buffer): TarEntry[] {
  const out: TarEntry[] = [];
  for (let at = 0; at + 512 <= archive.length;) {
    const header = archive.subarray(at, at + 512);
    if (header.every((b) => b === 0)) break;
    const text = (o: number, l: number) => header.toString('utf8', o, o + l).replace(/\0.*$/s, '');
    const size = parseInt(text(124, 12).trim(), 8);
    out.push({ name: text(0, 100), type: text(156, 1) || '0', content: archive.subarray(at + 512, at + 512 + size) });
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** A project that ran g, with its cache exported to g.tar, and a clean clone-like copy to import into. */
function exported(): { source: TempProject; archive: Buffer; entries: TarEntry[] } {
  const source = new TempProject({ 'pipelines/g.yaml': PIPELINE });
  assert.equal(source.cli(['run', 'pipelines/g.yaml']).status, 0);
  const r = source.cli(['cache', 'export', 'g.tar']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /exported 2 stage entries of 1 lockfiles \(2 objects/);
  const archive = readFileSync(source.path('g.tar'));
  return { source, archive, entries: untar(archive) };
}

/** A clean checkout of the same project: the pipeline and its committed lockfile, nothing else. */
function cleanClone(source: TempProject): TempProject {
  return new TempProject({ 'pipelines/g.yaml': PIPELINE, 'pipelines/g.lock.json': source.read('pipelines/g.lock.json') });
}

function storeFiles(p: TempProject): string[] {
  const root = p.path('.ablate/cache');
  if (!existsSync(root)) return [];
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe('cache export / import', () => {
  it('carries exactly what the lockfile references to a clean clone, where run --frozen restores every stage', () => {
    const source = new TempProject({ 'pipelines/g.yaml': PIPELINE.replace('greeting: hello', 'greeting: bye') });
    assert.equal(source.cli(['run', 'pipelines/g.yaml']).status, 0);
    source.write('pipelines/g.yaml', PIPELINE);
    assert.equal(source.cli(['run', 'pipelines/g.yaml']).status, 0);
    assert.equal(source.cli(['cache', 'export', 'g.tar', 'pipelines/g.yaml']).status, 0);

    // Only the current lockfile's entries: bye's output of a is in the store, not in the archive.
    const lock = JSON.parse(source.read('pipelines/g.lock.json')) as {
      stages: Record<string, { digest: string; outputs: Record<string, { digest: string }> }>;
    };
    const expected = [
      ...new Set(
        Object.values(lock.stages).flatMap((s) =>
          Object.values(s.outputs).map((o) => `objects/${o.digest.slice(0, 2)}/${o.digest.slice(2)}`),
        ),
      ),
    ].sort();
    const runs = Object.values(lock.stages)
      .map((s) => `runs/${s.digest.slice(0, 2)}/${s.digest.slice(2)}.json`)
      .sort();
    const names = untar(readFileSync(source.path('g.tar'))).map((e) => e.name);
    assert.deepEqual(names, [...expected, ...runs], 'objects first, then records, nothing else');
    assert.ok(
      storeFiles(source).some((f) => readFileSync(f, 'utf8') === 'bye\n'),
      'the store had more',
    );

    const clone = cleanClone(source);
    writeFileSync(clone.path('g.tar'), readFileSync(source.path('g.tar')));
    const imported = clone.cli(['cache', 'import', 'g.tar']);
    assert.equal(imported.status, 0, imported.stdout + imported.stderr);
    assert.match(imported.stdout, /imported 2 run records and 2 objects/);
    const run = clone.cli(['run', 'pipelines/g.yaml', '--frozen', '--plain']);
    assert.equal(run.status, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /g: 0 ran, 0 up to date, 2 restored, 0 failed/);
    assert.equal(clone.read('artifacts/g/b/b.txt'), 'hello\n');
    assert.equal(clone.read('pipelines/g.lock.json'), source.read('pipelines/g.lock.json'));
    assert.match(
      clone.cli(['cache', 'import', 'g.tar']).stdout,
      /imported 2 run records and 0 objects \(0\.0 MB\) from g\.tar; 2 objects were already here/,
    );
  });

  it('writes a gzipped archive for .tar.gz, with equal bytes for equal contents', () => {
    const { source } = exported();
    assert.equal(source.cli(['cache', 'export', 'g.tar.gz']).status, 0);
    const gz = readFileSync(source.path('g.tar.gz'));
    assert.deepEqual(
      untar(gunzipSync(gz)).map((e) => e.name),
      untar(readFileSync(source.path('g.tar'))).map((e) => e.name),
    );
    assert.equal(source.cli(['cache', 'export', 'again.tar.gz']).status, 0);
    assert.equal(sha256(readFileSync(source.path('again.tar.gz'))), sha256(gz));
    const clone = cleanClone(source);
    writeFileSync(clone.path('g.tgz'), gz);
    assert.equal(clone.cli(['cache', 'import', 'g.tgz']).status, 0);
    assert.match(clone.cli(['run', 'pipelines/g.yaml', '--frozen']).stdout, /2 restored/);
  });

  it('names what this cache cannot supply', () => {
    const { source } = exported();
    rmSync(source.path('.ablate/cache/runs'), { recursive: true });
    const r = source.cli(['cache', 'export', 'none.tar']);
    assert.equal(r.status, 0);
    assert.match(r.stdout, /exported 0 stage entries/);
    assert.match(r.stdout, /not in this cache, so not exported \(2\): pipelines\/g\.lock\.json: a, pipelines\/g\.lock\.json: b/);
    assert.match(source.cli(['cache', 'import', 'none.tar']).stdout, /imported 0 run records and 0 objects/, 'an empty archive reads back');
  });

  describe('refuses an archive that was altered, and leaves the store as it was', () => {
    const objectEntry = (entries: TarEntry[]) => entries.find((e) => e.name.startsWith('objects/'))!;
    const runEntry = (entries: TarEntry[], stageOutput: string) =>
      entries.find((e) => e.name.startsWith('runs/') && String(e.content).includes(`"${stageOutput}"`))!;
    const cases: { name: string; tamper: (entries: TarEntry[]) => Buffer; message: RegExp }[] = [
      {
        name: 'an object whose bytes were changed',
        tamper: (entries) => ustar(entries.map((e) => (e === objectEntry(entries) ? { ...e, content: 'evil\n' } : e))),
        message: /object objects\/\S+ does not match its digest; nothing was imported/,
      },
      {
        name: 'an entry outside the store layout',
        tamper: (entries) => ustar([{ name: '../../escaped.txt', content: 'x' }, ...entries]),
        message: /'\.\.\/\.\.\/escaped\.txt' \(File\) is not part of an ablate cache archive/,
      },
      {
        name: 'a symbolic link',
        tamper: (entries) => ustar([{ name: 'objects/aa/' + 'b'.repeat(62), type: '2', link: '/etc/passwd' }, ...entries]),
        message: /\(SymbolicLink\) is not part of an ablate cache archive/,
      },
      {
        name: 'a record whose fingerprint was edited',
        tamper: (entries) =>
          ustar(
            entries.map((e) => {
              if (e !== runEntry(entries, 'a.txt')) return e;
              const record = JSON.parse(String(e.content));
              record.fingerprint.params.vars = { greeting: 'evil' };
              return { ...e, content: JSON.stringify(record) };
            }),
          ),
        message: /run record runs\/\S+ does not match its fingerprint's digest/,
      },
      {
        name: 'a record pointing outside its directory',
        tamper: (entries) =>
          ustar(
            entries.map((e) => {
              if (e !== runEntry(entries, 'a.txt')) return e;
              const record = JSON.parse(String(e.content));
              record.outputs = { '../../x': record.outputs['a.txt'] };
              return { ...e, content: JSON.stringify(record) };
            }),
          ),
        message: /names an output '\.\.\/\.\.\/x' outside its directory/,
      },
      {
        name: 'a truncated archive',
        tamper: (entries) => ustar(entries).subarray(0, 700),
        message: /cannot be read as a tar archive .*nothing was imported/,
      },
    ];
    for (const c of cases)
      it(c.name, () => {
        const { source, entries } = exported();
        const clone = cleanClone(source);
        writeFileSync(clone.path('bad.tar'), c.tamper(entries));
        const r = clone.cli(['cache', 'import', 'bad.tar']);
        assert.equal(r.status, 1, r.stdout + r.stderr);
        assert.match(r.stderr, c.message);
        assert.deepEqual(storeFiles(clone), [], 'nothing landed in the store, not even the good objects');
        assert.equal(existsSync(clone.path('escaped.txt')) || existsSync(join(clone.root, '..', 'escaped.txt')), false);
        assert.match(clone.cli(['run', 'pipelines/g.yaml', '--frozen']).stdout, /g: 2 ran/, 'the clone still runs');
      });

    it('a record altered to be self-consistent but with other outputs than the lockfile: left out, so a stage cannot restore bytes the lockfile does not promise', () => {
      const { source, entries } = exported();
      const clone = cleanClone(source);
      const evil = Buffer.from('evil\n');
      const evilDigest = sha256(evil);
      const record = JSON.parse(String(runEntry(entries, 'a.txt').content));
      record.outputs = { 'a.txt': { digest: evilDigest, size: evil.length, executable: false } };
      // The output digest as manifestDigest computes it (canonical JSON of [path, digest, executable] rows).
      record.outputDigest = sha256(JSON.stringify([['a.txt', evilDigest, false]]));
      const forged = entries.map((e) => (e === runEntry(entries, 'a.txt') ? { ...e, content: JSON.stringify(record) } : e));
      writeFileSync(
        clone.path('forged.tar'),
        ustar([{ name: `objects/${evilDigest.slice(0, 2)}/${evilDigest.slice(2)}`, content: evil }, ...forged]),
      );
      const r = clone.cli(['cache', 'import', 'forged.tar']);
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /imported 1 run records/);
      assert.match(r.stdout, /not imported: \w+: other outputs than pipelines\/g\.lock\.json records for that fingerprint/);
      const run = clone.cli(['run', 'pipelines/g.yaml', '--frozen', '--plain']);
      assert.equal(run.status, 0, run.stdout + run.stderr);
      assert.equal(clone.read('artifacts/g/a/a.txt'), 'hello\n');
    });
  });

  it('explains a wrong command line', () => {
    const p = new TempProject({ 'pipelines/g.yaml': PIPELINE });
    assert.equal(p.cli(['cache', 'pack', 'x.tar']).status, 2);
    assert.equal(p.cli(['cache', 'export']).status, 2);
    const missing = p.cli(['cache', 'import', 'nope.tar']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.tar: no such file/);
    assert.match(p.cli(['cache', 'export', 'x.tar', 'pipelines/g.yaml']).stderr, /no lockfile, so nothing to export for it/);
  });
});
