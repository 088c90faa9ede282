// A replicated key-value server process on RaftNode + TcpTransport (in the spirit of etcd's raftexample).
// Client protocol: HTTP on --client-port. Writes go to the leader; a follower answers 307 to the leader.

import http from 'node:http';
import { parseArgs } from 'node:util';
import { RaftNode } from '../host/raft-node.js';
import { KvStateMachine, encodeCommand } from './kv-store.js';
import { TcpTransport, parseAddress } from '../transport/tcp.js';
import type { RaftLogger } from '../types.js';
import { RaftError } from '../types.js';

const USAGE = `usage: kv-server --id ID --peers ID=HOST:PORT,... --client-port PORT --data-dir DIR
  [--client-peers ID=HOST:PORT,...]  client addresses of the other members (for 307 redirects)
  [--client-host 127.0.0.1] [--join] [--tick-ms 25] [--snapshot-every 100000] (etcd's default --snapshot-count) [--log-level info]
  [--no-fsync]  (tests only: acknowledges writes that are not on disk)
  [--no-early-send]  (measurement: the leader sends appends only after its own fsync)

HTTP API:
  PUT    /kv/KEY   body = value     -> 200 {"index":N} once committed and applied
  DELETE /kv/KEY                    -> 200 {"index":N}
  GET    /kv/KEY                    -> 200 value (linearizable: ReadIndex), 404 if absent
  GET    /status                    -> 200 {"id","role","leader","term","commit","applied","stats",...}
A follower answers writes with 307 Temporary Redirect (Location = the leader's client URL, if it was
given --client-peers) or 503 {"error":"not_leader","leader":ID}; clients may follow or retry there.`;

/** Max request body; the state machine keeps everything in memory. */
const MAX_BODY_BYTES = 1024 * 1024;

function parsePeerList(s: string, flag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s.split(',').filter((p) => p.length > 0)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`${flag}: ${JSON.stringify(part)} is not ID=HOST:PORT`);
    const address = part.slice(eq + 1);
    parseAddress(address);
    out[part.slice(0, eq)] = address;
  }
  return out;
}

const levels = { debug: 10, info: 20, warn: 30, error: 40 } as const;
type Level = keyof typeof levels;

/** JSON lines on stderr; the library has no logging dependency of its own. */
function stderrLogger(id: string, min: Level): RaftLogger {
  const write = (level: Level) => (obj: object, msg?: string) => {
    if (levels[level] < levels[min]) return;
    process.stderr.write(JSON.stringify({ t: new Date().toISOString(), level, node: id, msg, ...obj }) + '\n');
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error(`body larger than ${MAX_BODY_BYTES} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      id: { type: 'string' },
      peers: { type: 'string' },
      'client-peers': { type: 'string', default: '' },
      'client-port': { type: 'string' },
      'client-host': { type: 'string', default: '127.0.0.1' },
      'data-dir': { type: 'string' },
      join: { type: 'boolean', default: false },
      'tick-ms': { type: 'string' },
      'snapshot-every': { type: 'string', default: '100000' },
      'log-level': { type: 'string', default: 'info' },
      'no-fsync': { type: 'boolean', default: false },
      'no-early-send': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.id || !values.peers || !values['client-port'] || !values['data-dir']) {
    process.stderr.write(USAGE + '\n');
    process.exit(values.help ? 0 : 2);
  }
  const id = values.id;
  const peers = parsePeerList(values.peers, '--peers');
  const clientPeers = parsePeerList(values['client-peers'], '--client-peers');
  const self = peers[id];
  if (!self) throw new Error(`--peers must include this node's own id ${id}`);
  const level = (values['log-level'] in levels ? values['log-level'] : 'info') as Level;
  const logger = stderrLogger(id, level);
  const positiveInt = (flag: string, text: string): number => {
    const n = Number(text);
    if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${flag} must be a positive integer, got ${JSON.stringify(text)}`);
    return n;
  };
  const clientPort = positiveInt('--client-port', values['client-port']);
  const snapshotEvery = positiveInt('--snapshot-every', values['snapshot-every']);
  const tickMs = values['tick-ms'] === undefined ? undefined : positiveInt('--tick-ms', values['tick-ms']);

  const listen = parseAddress(self);
  const transport = new TcpTransport({ id, listenHost: listen.host, listenPort: listen.port, logger });
  const kv = new KvStateMachine();
  const node = new RaftNode<number>({
    id,
    peers,
    join: values.join,
    dataDir: values['data-dir'],
    transport,
    stateMachine: kv,
    ...(tickMs === undefined ? {} : { tickMs }),
    snapshotEvery,
    fsync: !values['no-fsync'],
    leaderSendsEarly: !values['no-early-send'],
    logger,
    onFatal: () => process.exit(1),
  });
  await node.start();

  const leaderUrl = (path: string): string | null => {
    const leader = node.leaderId;
    const addr = leader ? clientPeers[leader] : undefined;
    return addr ? `http://${addr}${path}` : null;
  };
  const fail = (res: http.ServerResponse, path: string, err: unknown): void => {
    if (err instanceof RaftError && err.code === 'not_leader') {
      const location = leaderUrl(path);
      if (location) json(res, 307, { error: 'not_leader', leader: err.leaderHint }, { location });
      else json(res, 503, { error: 'not_leader', leader: err.leaderHint, message: err.message });
      return;
    }
    const code = err instanceof RaftError ? err.code : 'internal';
    json(res, 503, { error: code, message: (err as Error).message });
  };

  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    void (async () => {
      try {
        if (url === '/status' && req.method === 'GET') {
          const s = node.status();
          json(res, 200, {
            id,
            role: s.role,
            leader: s.leader,
            term: s.term,
            commit: s.commit,
            applied: node.appliedIndex,
            lastIndex: s.lastIndex,
            voters: s.confState.voters,
            keys: kv.data.size,
            stats: node.stats(),
            leaderClient: s.leader ? (clientPeers[s.leader] ?? null) : null,
          });
          return;
        }
        if (!url.startsWith('/kv/') || url.length <= 4) {
          json(res, 404, { error: 'not_found', message: 'use /kv/KEY or /status' });
          return;
        }
        const key = decodeURIComponent(url.slice(4));
        if (req.method === 'PUT' || req.method === 'POST') {
          const body = await readBody(req);
          const index = await node.propose(encodeCommand(['put', key, body]));
          json(res, 200, { index });
        } else if (req.method === 'DELETE') {
          const index = await node.propose(encodeCommand(['del', key]));
          json(res, 200, { index });
        } else if (req.method === 'GET') {
          await node.read();
          const v = kv.data.get(key);
          if (v === undefined) json(res, 404, { error: 'not_found', key });
          else {
            res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': v.byteLength });
            res.end(v);
          }
        } else {
          json(res, 405, { error: 'method_not_allowed' });
        }
      } catch (err) {
        if (!res.headersSent) fail(res, url, err);
      }
    })();
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(clientPort, values['client-host'], resolve));
  logger.info({ raft: self, client: `${values['client-host']}:${clientPort}` }, 'kv-server ready');

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    server.closeAllConnections();
    server.close();
    await node.close();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop());
  process.on('SIGINT', () => void stop());
}

main().catch((err: unknown) => {
  process.stderr.write(`kv-server: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
