// A task's ulimits as the kernel's rlimits: the OCI names and values (-1 is RLIM_INFINITY, written exactly in
// config.json), the daemon's own limits read from /proc, and the refusal of a limit the daemon cannot grant.

import test from 'ava';
import { readFileSync } from 'node:fs';
import { buildSpec, checkUlimits, containerConfigFor, defaultContainerConfig, hasSysResource, ociSpecJson, parseProcLimits, readHostLimits, RLIM_INFINITY, rlimitType, RuntimeError, type HostLimits, type ImageConfig } from '../src/index.js';
import { newTask } from '@swarm/store/testing';
import type { Task } from '@swarm/store';

const image: ImageConfig = { entrypoint: [], cmd: ['sh'], env: [], workingDir: '', user: '', stopSignal: '', labels: {}, exposedPorts: [] };
const files = { passwd: '', group: '' };
const paths = { hosts: '/h', hostname: '/n', resolvConf: '/r', volumes: new Map<string, string>(), init: '/tini' };

const PROC_LIMITS = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max processes             96364                96364                processes 
Max open files            20000                20000                files     
Max address space         unlimited            unlimited            bytes     
Max nice priority         0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`;

test('the OCI spec carries the ulimits as process.rlimits (RLIMIT_ names, -1 as RLIM_INFINITY); none: an empty list', (t) => {
  const ulimits = [{ name: 'nofile' as const, soft: 1024, hard: 2048 }, { name: 'core' as const, soft: 0, hard: -1 }];
  const spec = buildSpec({ ...defaultContainerConfig('task1', []), ulimits }, image, files, paths);
  t.deepEqual(spec.process.rlimits, [
    { type: 'RLIMIT_NOFILE', hard: 2048, soft: 1024 },
    { type: 'RLIMIT_CORE', hard: RLIM_INFINITY, soft: 0 },
  ]);
  t.deepEqual(buildSpec(defaultContainerConfig('task1', []), image, files, paths).process.rlimits, []);
  // runc reads the limits as uint64: 2^64-1 written exactly (a JSON number would round it to 18446744073709552000).
  const json = ociSpecJson(spec);
  t.true(json.includes('{"type":"RLIMIT_CORE","hard":18446744073709551615,"soft":0}'), json);
  t.is(rlimitType('sigpending'), 'RLIMIT_SIGPENDING');
});

test("containerConfigFor: the task's ulimits; a spec without the field (stored before it existed) has none", (t) => {
  const task = newTask('t1', 's1', 1) as Task;
  t.deepEqual(containerConfigFor(task).ulimits, []);
  const limited = { ...task, spec: { ...task.spec, containerSpec: { ...task.spec.containerSpec, ulimits: [{ name: 'nproc' as const, soft: 10, hard: 20 }] } } };
  t.deepEqual(containerConfigFor(limited).ulimits, [{ name: 'nproc', soft: 10, hard: 20 }]);
});

test('/proc/self/limits parsed by Docker\'s names (unlimited as -1); CAP_SYS_RESOURCE from CapEff', (t) => {
  const limits = parseProcLimits(PROC_LIMITS);
  t.deepEqual(limits.get('nofile'), { soft: 20000, hard: 20000 });
  t.deepEqual(limits.get('stack'), { soft: 8388608, hard: -1 });
  t.deepEqual(limits.get('nice'), { soft: 0, hard: 0 });
  t.deepEqual(limits.get('rttime'), { soft: -1, hard: -1 });
  t.false([...limits.keys()].some((k) => (k as string) === 'as'), 'the address space has no Docker name');
  t.true(hasSysResource('CapEff:\t000001ffffffffff\n'));
  t.false(hasSysResource('Name:\tnode\nCapEff:\t000001fffeffffff\n'), 'bit 24 cleared');
  // This process's own, as the daemon reads them: every Docker name is there.
  const own = readHostLimits();
  t.is(own.hard.size, 15);
  t.is(own.hard.get('nofile'), parseProcLimits(readFileSync('/proc/self/limits', 'utf8')).get('nofile')?.hard);
});

test('a hard limit above the daemon\'s own is refused naming the ulimit when it cannot raise it; lower or equal ones, and any with CAP_SYS_RESOURCE, pass; nofile never above fs.nr_open', (t) => {
  const host: HostLimits = { hard: new Map([['nofile', 20000], ['core', -1], ['nproc', 500]]), canRaise: false, nrOpen: 1_048_576 };
  const refused = (u: { name: 'nofile' | 'core' | 'nproc'; soft: number; hard: number }, h: HostLimits = host): string => {
    const err = t.throws(() => checkUlimits([u], h), { instanceOf: RuntimeError });
    t.is(err?.code, 'invalid_config');
    return err?.message ?? '';
  };
  t.notThrows(() => checkUlimits([{ name: 'nofile', soft: 1024, hard: 20000 }, { name: 'core', soft: -1, hard: -1 }, { name: 'nproc', soft: 1, hard: 2 }], host));
  t.is(refused({ name: 'nofile', soft: 20000, hard: 40000 }), "ulimit nofile: the hard limit 40000 is above the daemon's own hard limit on this node (20000), which it cannot raise without CAP_SYS_RESOURCE: lower the service's ulimit, or raise the daemon's (LimitNOFILE= in its systemd unit)");
  t.regex(refused({ name: 'nproc', soft: 1, hard: -1 }), /^ulimit nproc: the hard limit unlimited is above the daemon's own hard limit on this node \(500\)/);
  const root = { ...host, canRaise: true };
  t.notThrows(() => checkUlimits([{ name: 'nofile', soft: 1, hard: 40000 }], root));
  t.regex(refused({ name: 'nofile', soft: 1, hard: 2_000_000 }, root), /^ulimit nofile: the hard limit 2000000 is above this node's kernel maximum of open files \(fs\.nr_open = 1048576\)/);
  t.regex(refused({ name: 'nofile', soft: 1, hard: -1 }, root), /fs\.nr_open/);
});
