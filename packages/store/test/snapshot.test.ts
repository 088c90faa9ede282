import test from 'ava';
import { Packr, Unpackr } from 'msgpackr';
import { Store, StoreError, WatchClosedError, type Op, type ObjectKind, type Task } from '../src/index.js';
import { commit, edit, mustCommit, newNode, newService, newTask, prng } from './fixtures.js';

function sameBytes(x: Uint8Array, y: Uint8Array): boolean {
  return Buffer.from(x.buffer, x.byteOffset, x.byteLength).equals(y);
}

/** A seeded stream of plausible transactions, some of which must fail (stale versions, duplicate names, ...). */
function randomEntries(seed: number, count: number, planFrom: Store): Array<{ index: number; ops: Op[] }> {
  const rand = prng(seed);
  const pick = <T>(xs: readonly T[]): T | undefined => xs[Math.floor(rand() * xs.length)];
  const entries: Array<{ index: number; ops: Op[] }> = [];
  let next = 1;
  for (let index = 1; index <= count; index++) {
    const ops: Op[] = [];
    const opCount = 1 + Math.floor(rand() * 4);
    const used = new Set<string>();
    for (let k = 0; k < opCount; k++) {
      const r = rand();
      const services = planFrom.list('service');
      const tasks = planFrom.list('task');
      if (r < 0.2 || services.length === 0) {
        ops.push({ op: 'create', kind: 'service', object: newService(`s${next++}`, `svc-${Math.floor(rand() * 20)}`) });
      } else if (r < 0.5) {
        const s = pick(services);
        if (s !== undefined) {
          ops.push({ op: 'create', kind: 'task', object: newTask(`t${next++}`, s.id, 1 + Math.floor(rand() * 3), { nodeId: rand() < 0.5 ? 'n1' : '' }) });
        }
      } else if (r < 0.8) {
        const task = pick(tasks);
        if (task !== undefined && !used.has(task.id)) {
          used.add(task.id);
          const states = ['pending', 'assigned', 'running', 'failed', 'starting'] as const;
          ops.push({
            op: 'update',
            kind: 'task',
            object: edit(task, (c: Task) => {
              c.status.state = pick(states) ?? 'running';
              if (rand() < 0.2) c.meta.version.index -= 1; // a stale read
              if (c.nodeId === '') c.nodeId = 'n2';
            }),
          });
        }
      } else {
        const victim = rand() < 0.5 ? pick(tasks) : pick(services);
        const kind: ObjectKind = victim !== undefined && 'serviceId' in victim ? 'task' : 'service';
        if (victim !== undefined && !used.has(victim.id)) {
          used.add(victim.id);
          ops.push({ op: 'delete', kind, id: victim.id });
        }
      }
    }
    if (ops.length === 0) continue;
    entries.push({ index, ops });
    commit(planFrom, index, ops);
  }
  return entries;
}

test('two stores applying the same entries hold byte-identical snapshots after every entry', (t) => {
  const planner = new Store();
  const entries = randomEntries(42, 300, planner);
  const a = new Store();
  const b = new Store();
  let failures = 0;
  for (const e of entries) {
    const ra = commit(a, e.index, e.ops);
    const rb = commit(b, e.index, e.ops);
    t.is(ra.ok, rb.ok);
    if (!ra.ok) failures++;
    t.true(sameBytes(a.snapshot(), b.snapshot()), `after entry ${e.index}`);
  }
  t.true(failures > 10, `the random log should exercise refusals (got ${failures})`);
  t.true(a.count('task') > 10);
  t.true(sameBytes(a.snapshot(), planner.snapshot()));
});

test('snapshot then restore gives an identical store that goes on identically', (t) => {
  const planner = new Store();
  const entries = randomEntries(7, 400, planner);
  const cut = Math.floor(entries.length / 2);
  const original = new Store();
  for (const e of entries.slice(0, cut)) commit(original, e.index, e.ops);
  const restored = new Store();
  restored.restore(original.snapshot());
  t.is(restored.appliedIndex, original.appliedIndex);
  t.true(sameBytes(restored.snapshot(), original.snapshot()));
  for (const kind of ['service', 'task', 'node'] as const) {
    const sorted = (s: Store) => [...s.list(kind)].sort((x, y) => (x.id < y.id ? -1 : 1));
    t.deepEqual(sorted(restored), sorted(original));
  }
  for (const s of original.list('service')) {
    t.deepEqual(restored.tasksByService(s.id).map((x) => x.id).sort(), original.tasksByService(s.id).map((x) => x.id).sort());
    t.is(restored.getByName('service', s.spec.name)?.id, s.id);
  }
  for (const e of entries.slice(cut)) {
    const ro = commit(original, e.index, e.ops);
    const rr = commit(restored, e.index, e.ops);
    t.deepEqual(rr.ok ? 'ok' : rr.error.code, ro.ok ? 'ok' : ro.error.code, `entry ${e.index}`);
  }
  t.true(sameBytes(restored.snapshot(), original.snapshot()));
});

test('a bad snapshot is refused and leaves the store as it was', (t) => {
  const store = new Store();
  mustCommit(store, 1, [
    { op: 'create', kind: 'node', object: newNode('n1', 'node-1') },
    { op: 'create', kind: 'service', object: newService('s1', 'web') },
  ]);
  const before = store.snapshot();
  const err = t.throws(() => store.restore(new Uint8Array([1, 2, 3])), { instanceOf: StoreError });
  t.is(err?.code, 'invalid');
  const twoWebs = new Store();
  mustCommit(twoWebs, 1, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  // Hand-craft a snapshot with a duplicated name by splicing two stores' tables.
  const other = new Store();
  mustCommit(other, 1, [{ op: 'create', kind: 'service', object: newService('s2', 'WEB') }]);
  const codec = { useRecords: true, moreTypes: false, int64AsType: 'number' } as const;
  const decode = (b: Uint8Array): unknown => new Unpackr(codec).unpack(b);
  const encode = (v: unknown): Uint8Array => new Packr(codec).pack(v);
  const snapA = decode(twoWebs.snapshot()) as { tables: Array<[string, unknown[]]> };
  const snapB = decode(other.snapshot()) as { tables: Array<[string, unknown[]]> };
  const services = snapA.tables.find((x) => x[0] === 'service');
  const more = snapB.tables.find((x) => x[0] === 'service');
  if (services === undefined || more === undefined) return t.fail('service table missing');
  services[1].push(...more[1]);
  const err2 = t.throws(() => store.restore(encode(snapA)), { instanceOf: StoreError });
  t.regex(err2?.message ?? '', /two services named web/);
  t.deepEqual(store.snapshot(), before);
  t.is(store.get('node', 'n1')?.description.hostname, 'node-1');
});

test('restore closes open watchers so they re-list', (t) => {
  const store = new Store();
  const w = store.watch();
  const source = new Store();
  mustCommit(source, 9, [{ op: 'create', kind: 'service', object: newService('s1', 'web') }]);
  store.restore(source.snapshot());
  t.is(w.closeReason, 'restored');
  t.throws(() => w.poll(), { instanceOf: WatchClosedError });
  t.is(store.watcherCount, 0);
  t.is(store.appliedIndex, 9);
});

test('secrets, configs and a service that uses them come through a transaction and a snapshot as they went in (bytes as Uint8Array, names unique)', (t) => {
  const store = new Store();
  const sealed = new Uint8Array([0x53, 0x57, 0x42, 0x01, 0, 1, 2, 255]);
  const service = edit(newService('s1', 'api'), (c) => {
    c.spec.taskTemplate.containerSpec.secrets = [{ secretId: 'x1', secretName: 'db', target: 'db', uid: '1000', gid: '1000', mode: 0o400 }];
    c.spec.taskTemplate.containerSpec.configs = [{ configId: 'c1', configName: 'app.conf', target: '/etc/app.conf', uid: '0', gid: '0', mode: 0o444 }];
  });
  mustCommit(store, 1, [
    { op: 'create', kind: 'secret', object: { id: 'x1', spec: { name: 'db', labels: { env: 'prod' }, data: sealed } } },
    { op: 'create', kind: 'config', object: { id: 'c1', spec: { name: 'app.conf', labels: {}, data: new TextEncoder().encode('listen 80') } } },
    { op: 'create', kind: 'service', object: service },
  ]);
  const dup = commit(store, 2, [{ op: 'create', kind: 'secret', object: { id: 'x2', spec: { name: 'DB', labels: {}, data: sealed } } }]);
  t.false(dup.ok, 'a secret name is unique, in any case');
  const restored = new Store();
  restored.restore(store.snapshot());
  const secret = restored.get('secret', 'x1');
  t.true(secret?.spec.data instanceof Uint8Array);
  t.true(sameBytes(secret?.spec.data ?? new Uint8Array(), sealed));
  t.deepEqual(secret?.spec.labels, { env: 'prod' });
  t.is(new TextDecoder().decode(restored.get('config', 'c1')?.spec.data), 'listen 80');
  t.deepEqual(restored.get('service', 's1')?.spec.taskTemplate.containerSpec.secrets, service.spec.taskTemplate.containerSpec.secrets);
  t.deepEqual(restored.get('service', 's1')?.spec.taskTemplate.containerSpec.configs, service.spec.taskTemplate.containerSpec.configs);
});
