// Client side of scripts/demo and scripts/bench: status tables, leader discovery, the closed-loop load
// generator and the failover timer, for both our kv-server (HTTP) and etcd's v3 JSON gateway.
//
// usage: node bench-tool.mjs free-ports N
//        node bench-tool.mjs status kv|etcd URL...
//        node bench-tool.mjs wait-leader kv|etcd TIMEOUT_MS URL...        -> prints the leader's position in the URL list (0-based)
//        node bench-tool.mjs wait-all kv|etcd TIMEOUT_MS URL...           -> like wait-leader, but every node must answer
//        node bench-tool.mjs wait-caught-up TIMEOUT_MS URL...             -> (kv) waits until every node applied the leader's commit
//        node bench-tool.mjs load kv|etcd SECONDS CONCURRENCY URL         -> one JSON line {ops, seconds, opsPerSec, p50Ms, p99Ms, errors}
//        node bench-tool.mjs failover kv|etcd PID TIMEOUT_MS URL...       -> SIGKILLs PID, then writes until one commits: {ms, newLeader}
import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

const [, , command, ...args] = process.argv;

function die(msg) {
  process.stderr.write(`bench-tool: ${msg}\n`);
  process.exit(2);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** One HTTP request; resolves {status, body, headers}; rejects on network error or timeout. */
function request(agent, url, method, body, timeoutMs = 2000, headers = {}) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request(
      { host: u.hostname, port: u.port, path: u.pathname, method, agent, headers: { ...headers, 'content-length': body ? body.length : 0 } },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

// ---- per-system adapters ----

const kv = {
  async status(agent, url) {
    const r = await request(agent, `${url}/status`, 'GET', null, 500);
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    const s = JSON.parse(r.body.toString());
    return { id: s.id, role: s.role, leader: s.leader, term: s.term, commit: s.commit, applied: s.applied, isLeader: s.role === 'leader' };
  },
  put(agent, url, key, value, timeoutMs) {
    return request(agent, `${url}/kv/${encodeURIComponent(key)}`, 'PUT', value, timeoutMs);
  },
};

const b64 = (b) => Buffer.from(b).toString('base64');
const etcd = {
  async status(agent, url) {
    const r = await request(agent, `${url}/v3/maintenance/status`, 'POST', Buffer.from('{}'), 500, { 'content-type': 'application/json' });
    if (r.status !== 200) throw new Error(`status ${r.status}`);
    const s = JSON.parse(r.body.toString());
    const id = s.header?.member_id ?? '?';
    const raftIndex = Number(s.raftIndex ?? 0);
    return { id, role: s.leader === id ? 'leader' : 'follower', leader: s.leader ?? null, term: Number(s.raftTerm ?? 0), commit: raftIndex, applied: Number(s.raftAppliedIndex ?? raftIndex), isLeader: s.leader === id };
  },
  put(agent, url, key, value, timeoutMs) {
    const body = Buffer.from(JSON.stringify({ key: b64(key), value: b64(value) }));
    return request(agent, `${url}/v3/kv/put`, 'POST', body, timeoutMs, { 'content-type': 'application/json' });
  },
};

function adapter(name) {
  if (name === 'kv') return kv;
  if (name === 'etcd') return etcd;
  return die(`unknown system ${name} (kv|etcd)`);
}

async function statuses(sys, agent, urls) {
  return Promise.all(urls.map((u) => sys.status(agent, u).catch((err) => ({ error: err.message }))));
}

// ---- commands ----

async function freePorts(n) {
  const servers = [];
  const ports = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise((r) => s.listen(0, '127.0.0.1', r));
    servers.push(s);
    ports.push(s.address().port);
  }
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  console.log(ports.join(' '));
}

async function status(sysName, urls) {
  const sys = adapter(sysName);
  const agent = new http.Agent({ keepAlive: false });
  const all = await statuses(sys, agent, urls);
  const rows = [['url', 'id', 'role', 'leader', 'term', 'commit', 'applied']];
  urls.forEach((u, i) => {
    const s = all[i];
    if (s.error) rows.push([u, '-', 'DOWN', '', '', '', '']);
    else rows.push([u, String(s.id), s.role, String(s.leader ?? '-'), String(s.term), String(s.commit), String(s.applied)]);
  });
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  for (const r of rows) console.log('  ' + r.map((cell, c) => cell.padEnd(widths[c])).join('  '));
}

/** Exactly one node says it leads, and every reachable node agrees. */
async function findLeader(sys, agent, urls, requireAll = false) {
  const all = await statuses(sys, agent, urls);
  if (requireAll && all.some((s) => s.error)) return -1;
  const leaders = all.map((s, i) => (s.isLeader ? i : -1)).filter((i) => i >= 0);
  if (leaders.length !== 1) return -1;
  const leader = all[leaders[0]];
  const agree = all.every((s) => s.error || s.leader === leader.id);
  return agree ? leaders[0] : -1;
}

async function waitLeader(sysName, timeoutMs, urls, requireAll = false) {
  const sys = adapter(sysName);
  const agent = new http.Agent({ keepAlive: false });
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const i = await findLeader(sys, agent, urls, requireAll);
    if (i >= 0) {
      console.log(i);
      return;
    }
    await sleep(25);
  }
  die(`no leader among ${urls.join(' ')} within ${timeoutMs} ms`);
}

async function waitCaughtUp(timeoutMs, urls) {
  const agent = new http.Agent({ keepAlive: false });
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const all = await statuses(kv, agent, urls);
    const leader = all.find((s) => s.isLeader);
    if (leader && all.every((s) => !s.error && s.applied >= leader.commit)) {
      console.log(leader.commit);
      return;
    }
    await sleep(25);
  }
  die(`nodes did not catch up within ${timeoutMs} ms`);
}

async function kvStats(url) {
  try {
    const r = await request(new http.Agent({ keepAlive: false }), `${url}/status`, 'GET', null, 1000);
    return JSON.parse(r.body.toString()).stats ?? null;
  } catch {
    return null;
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function load(sysName, seconds, concurrency, url) {
  const sys = adapter(sysName);
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
  const value = randomBytes(64);
  const warmupMs = Number(process.env.BENCH_WARMUP_MS ?? 1000);
  const startMs = performance.now();
  const measureFrom = startMs + warmupMs;
  const endMs = measureFrom + seconds * 1000;
  const latencies = [];
  let errors = 0;
  let firstError = null;
  async function worker(w) {
    let n = 0;
    while (true) {
      const t0 = performance.now();
      if (t0 >= endMs) return;
      const key = `key-${w}-${n++ % 100}`;
      try {
        const r = await sys.put(agent, url, key, value, 5000);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.toString().slice(0, 200)}`);
        const t1 = performance.now();
        if (t0 >= measureFrom && t1 <= endMs) latencies.push(t1 - t0);
      } catch (err) {
        errors++;
        firstError ??= err.message;
        await sleep(10);
      }
    }
  }
  const cpuBefore = process.cpuUsage();
  const statsBefore = sysName === 'kv' ? await kvStats(url) : null;
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  agent.destroy();
  const cpu = process.cpuUsage(cpuBefore);
  const statsAfter = sysName === 'kv' ? await kvStats(url) : null;
  latencies.sort((a, b) => a - b);
  const out = {
    system: sysName,
    concurrency,
    seconds,
    ops: latencies.length,
    opsPerSec: Math.round(latencies.length / seconds),
    p50Ms: Number(percentile(latencies, 50).toFixed(2)),
    p99Ms: Number(percentile(latencies, 99).toFixed(2)),
    p90Ms: Number(percentile(latencies, 90).toFixed(2)),
    maxMs: Number((latencies.at(-1) ?? NaN).toFixed(2)),
    errors,
    firstError,
    // The client's own CPU use over the run (100 = one core busy): shows whether the client is the limit.
    clientCpuPct: Math.round(((cpu.user + cpu.system) / 1000 / (performance.now() - startMs)) * 100),
  };
  if (statsBefore && statsAfter) {
    // Leader-side batching: how many entries each fsync covered during the run.
    const syncs = statsAfter.syncs - statsBefore.syncs;
    out.leaderEntriesPerFsync = syncs > 0 ? Number(((statsAfter.entriesSaved - statsBefore.entriesSaved) / syncs).toFixed(1)) : null;
    // Mean time from propose() to applied on the leader: the Raft share of the client-observed latency.
    const resolved = statsAfter.proposalsResolved - statsBefore.proposalsResolved;
    out.leaderProposeToApplyMs = resolved > 0 ? Number(((statsAfter.proposalWaitMs - statsBefore.proposalWaitMs) / resolved).toFixed(2)) : null;
    out.clientMeanMs = Number((latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length)).toFixed(2));
    // Share of the run the leader spent waiting for its WAL (write + fsync): near 100 = disk-bound.
    out.leaderDiskBusyPct = Math.round(((statsAfter.saveMs - statsBefore.saveMs) / (performance.now() - startMs)) * 100);
  }
  console.log(JSON.stringify(out));
}

async function failover(sysName, pid, timeoutMs, urls) {
  const sys = adapter(sysName);
  const agent = new http.Agent({ keepAlive: false });
  const value = Buffer.from('after-failover');
  const t0 = performance.now();
  process.kill(pid, 'SIGKILL');
  const until = t0 + timeoutMs;
  // Poll the survivors until one says it leads, then write there; a write counts once it is answered 200
  // (committed on a quorum and applied). The same discipline for both systems.
  while (performance.now() < until) {
    const all = await statuses(sys, agent, urls);
    const i = all.findIndex((s) => s.isLeader);
    if (i >= 0) {
      try {
        const r = await sys.put(agent, urls[i], `failover-${Date.now()}`, value, 1000);
        if (r.status === 200) {
          const ms = performance.now() - t0;
          console.log(JSON.stringify({ ms: Number(ms.toFixed(1)), via: urls[i] }));
          return;
        }
      } catch {
        // leader moved or timed out: look again
      }
    }
    await sleep(5);
  }
  die(`no write committed within ${timeoutMs} ms after killing ${pid}`);
}

const num = (s, what) => {
  const n = Number(s);
  if (!Number.isFinite(n)) die(`${what} must be a number, got ${s}`);
  return n;
};

switch (command) {
  case 'free-ports':
    await freePorts(num(args[0], 'N'));
    break;
  case 'status':
    await status(args[0], args.slice(1));
    break;
  case 'wait-leader':
    await waitLeader(args[0], num(args[1], 'TIMEOUT_MS'), args.slice(2));
    break;
  case 'wait-all':
    await waitLeader(args[0], num(args[1], 'TIMEOUT_MS'), args.slice(2), true);
    break;
  case 'wait-caught-up':
    await waitCaughtUp(num(args[0], 'TIMEOUT_MS'), args.slice(1));
    break;
  case 'load':
    await load(args[0], num(args[1], 'SECONDS'), num(args[2], 'CONCURRENCY'), args[3] ?? die('URL missing'));
    break;
  case 'failover':
    await failover(args[0], num(args[1], 'PID'), num(args[2], 'TIMEOUT_MS'), args.slice(3));
    break;
  default:
    die(`unknown command ${command}; see the header of ${process.argv[1]}`);
}
