// `service logs` across nodes: every node serves its tasks' logs over libp2p (/swarm/logs/1.0.0) to managers; the
// manager the CLI talks to asks each node that ran a task of the service and merges the lines as they come.

import type { GossipHost, Stream } from '@swarm/gossip';
import type { Logger } from '@swarm/wire';
import { encodeFrame, FrameReader } from 'raft-consensus-ts';

export const LOGS_PROTOCOL = '/swarm/logs/1.0.0';
const MAX_LOG_FRAME_BYTES = 1024 * 1024;
const MAX_LOG_STREAMS = 64;
/** Lines of one task sent for `--tail` when none is given (Docker sends all; a bound keeps a request cheap). */
export const MAX_TAIL_LINES = 100_000;
const OPEN_TIMEOUT_MS = 5_000;

export interface LogLine {
  stream: 'stdout' | 'stderr';
  timestampMs: number;
  line: string;
}

export interface TaskLogLine extends LogLine {
  taskId: string;
}

export interface LogsRequest {
  taskIds: string[];
  tail: number;
  follow: boolean;
}

/** Where a node's task logs come from (the agent). */
export type LogSource = (taskId: string, opts: { tail: number; follow: boolean; signal: AbortSignal }) => AsyncIterable<LogLine>;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Several async streams as one, in arrival order (each stream's own items stay in order); a failing one just ends. */
export async function* mergeStreams<T>(streams: ReadonlyArray<AsyncIterable<T>>, signal: AbortSignal): AsyncGenerator<T> {
  const queue: T[] = [];
  let wake: (() => void) | null = null;
  let active = streams.length;
  const notify = (): void => {
    wake?.();
    wake = null;
  };
  for (const source of streams) {
    void (async () => {
      try {
        for await (const item of source) {
          queue.push(item);
          notify();
          if (signal.aborted) break;
        }
      } catch {
        // a source that is gone (a removed task, a dead node) ends its part of the stream
      } finally {
        active--;
        notify();
      }
    })();
  }
  while (!signal.aborted) {
    const next = queue.shift();
    if (next !== undefined) {
      yield next;
      continue;
    }
    if (active === 0) return;
    await new Promise<void>((resolve) => {
      wake = resolve;
      signal.addEventListener('abort', () => resolve(), { once: true });
    });
  }
}

async function* tagged(source: LogSource, taskId: string, opts: { tail: number; follow: boolean; signal: AbortSignal }): AsyncGenerator<TaskLogLine> {
  for await (const l of source(taskId, opts)) yield { taskId, ...l };
}

/** This node's logs of several tasks as one stream. */
export function mergeTaskLogs(source: LogSource, request: LogsRequest, signal: AbortSignal): AsyncGenerator<TaskLogLine> {
  return mergeStreams(
    request.taskIds.map((id) => tagged(source, id, { tail: request.tail, follow: request.follow, signal })),
    signal,
  );
}

/** Serves this node's task logs to managers (`isManager` checks the libp2p peer asking). */
export async function serveTaskLogs(host: GossipHost, source: LogSource, isManager: (peer: string) => boolean, logger: Logger): Promise<void> {
  await host.handle(
    LOGS_PROTOCOL,
    async (stream, remote) => {
      const controller = new AbortController();
      try {
        const reader = new FrameReader(MAX_LOG_FRAME_BYTES);
        let request: LogsRequest | null = null;
        const iterator = (stream as AsyncIterable<Uint8Array | { subarray(): Uint8Array }>)[Symbol.asyncIterator]();
        while (request === null) {
          const { value, done } = await iterator.next();
          if (done === true) return;
          const frames = reader.push(Buffer.from(value instanceof Uint8Array ? value : value.subarray()));
          const first = frames[0];
          if (first === undefined) continue;
          if (!isRecord(first) || !Array.isArray(first['taskIds'])) return;
          request = {
            taskIds: (first['taskIds'] as unknown[]).filter((x): x is string => typeof x === 'string').slice(0, 1_000),
            tail: typeof first['tail'] === 'number' ? Math.min(Math.max(0, Math.floor(first['tail'])), MAX_TAIL_LINES) : MAX_TAIL_LINES,
            follow: first['follow'] === true,
          };
        }
        if (!isManager(remote)) {
          stream.send(encodeFrame({ error: 'only managers read task logs' }, MAX_LOG_FRAME_BYTES));
          return;
        }
        // The asker hanging up ends a follow.
        void (async () => {
          try {
            for (;;) if ((await iterator.next()).done === true) break;
          } catch {
            // closed
          }
          controller.abort();
        })();
        for await (const l of mergeTaskLogs(source, request, controller.signal)) {
          stream.send(encodeFrame(l, MAX_LOG_FRAME_BYTES));
        }
        stream.send(encodeFrame({ end: true }, MAX_LOG_FRAME_BYTES));
      } catch (err) {
        logger.debug({ remote, err: (err as Error).message }, 'a task log stream ended');
      } finally {
        controller.abort();
        await stream.close().catch(() => undefined);
      }
    },
    MAX_LOG_STREAMS,
  );
}

/** Reads task logs from the node at `addr` (a multiaddr). */
export async function* fetchTaskLogs(host: GossipHost, addr: string, request: LogsRequest, signal: AbortSignal): AsyncGenerator<TaskLogLine> {
  let stream: Stream;
  try {
    stream = await host.openStream(addr, LOGS_PROTOCOL, AbortSignal.any([signal, AbortSignal.timeout(OPEN_TIMEOUT_MS)]));
  } catch {
    return; // a node that is gone has no logs to give; the others still do
  }
  const onAbort = (): void => stream.abort(new Error('log request aborted'));
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    stream.send(encodeFrame(request, MAX_LOG_FRAME_BYTES));
    const reader = new FrameReader(MAX_LOG_FRAME_BYTES);
    for await (const chunk of stream) {
      for (const f of reader.push(Buffer.from(chunk instanceof Uint8Array ? chunk : chunk.subarray()))) {
        if (!isRecord(f) || f['end'] === true || typeof f['error'] === 'string') return;
        if (typeof f['taskId'] === 'string' && typeof f['line'] === 'string' && typeof f['timestampMs'] === 'number') {
          yield { taskId: f['taskId'], stream: f['stream'] === 'stderr' ? 'stderr' : 'stdout', timestampMs: f['timestampMs'], line: f['line'] };
        }
      }
    }
  } catch {
    // the node went away mid-stream
  } finally {
    signal.removeEventListener('abort', onAbort);
    stream.abort(new Error('log request over'));
  }
}
