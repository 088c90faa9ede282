// Writes that reach a manager which is not the Raft leader: forwarded to the leader over a libp2p request/response
// protocol; the leader answers after commit, and the follower answers its client once it has applied that index.

import { ApiError, isApiErrorCode } from '@swarm/api';
import type { GossipHost, Stream } from '@swarm/gossip';
import { StoreError, type ApplyResult } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { encodeFrame, FrameReader, RaftError, type RaftNode } from 'raft-consensus-ts';

export const PROPOSE_PROTOCOL = '/swarm/propose/1.0.0';
/** One transaction is at most a few MiB of store objects. */
const MAX_FORWARD_FRAME_BYTES = 16 * 1024 * 1024;
export const FORWARD_TIMEOUT_MS = 15_000;
const APPLY_POLL_MS = 5;
const MAX_INBOUND_FORWARDS = 256;

type ForwardAnswer = { ok: true; index: number } | { ok: false; code: string; message: string };

export function storeErrorToApi(err: StoreError): ApiError {
  switch (err.code) {
    case 'not_found':
      return new ApiError('not_found', err.message);
    case 'exists':
    case 'name_conflict':
    case 'version_conflict':
      return new ApiError('conflict', err.message);
    case 'invalid':
      return new ApiError('invalid_argument', err.message);
  }
}

export function raftErrorToApi(err: RaftError): ApiError {
  if (err.code === 'not_leader' || err.code === 'unavailable' || err.code === 'proposal_dropped') {
    return new ApiError('unavailable', `the cluster could not complete the request: ${err.message}`);
  }
  return new ApiError('internal', `raft: ${err.message}`);
}

/** Proposes on this node (the leader); resolves to the committed index or throws ApiError. */
export async function proposeHere(raft: RaftNode<ApplyResult>, data: Uint8Array): Promise<number> {
  let result: ApplyResult;
  try {
    result = await raft.propose(data);
  } catch (err) {
    if (err instanceof RaftError) throw raftErrorToApi(err);
    throw err;
  }
  if (!result.ok) throw storeErrorToApi(result.error);
  return result.index;
}

function peerOf(address: string): string {
  return /\/p2p\/([A-Za-z0-9]+)$/.exec(address)?.[1] ?? address;
}

async function readOneFrame(stream: Stream): Promise<unknown> {
  const reader = new FrameReader(MAX_FORWARD_FRAME_BYTES);
  for await (const chunk of stream) {
    const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray();
    const values = reader.push(Buffer.from(bytes));
    if (values.length > 0) return values[0];
  }
  throw new ApiError('unavailable', 'the peer closed the forwarding stream without an answer');
}

export class ProposalForwarder {
  private stopped = false;

  constructor(
    private readonly host: GossipHost,
    private readonly raft: RaftNode<ApplyResult>,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    await this.host.handle(PROPOSE_PROTOCOL, (stream, remote) => this.serve(stream, remote), MAX_INBOUND_FORWARDS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.host.unhandle(PROPOSE_PROTOCOL).catch(() => undefined);
  }

  /** Sends an encoded transaction to the leader; resolves once it committed there and was applied here. */
  async forward(data: Uint8Array): Promise<number> {
    const leader = this.raft.leaderId;
    const address = leader === null ? null : this.raft.addressOf(leader);
    if (leader === null || address === null) throw new ApiError('unavailable', 'no Raft leader is known to forward the write to: retry in a moment');
    let answer: unknown;
    const signal = AbortSignal.timeout(FORWARD_TIMEOUT_MS);
    try {
      const peer = peerOf(address);
      let target = address;
      try {
        if (this.host.isConnected(peer)) target = peer;
      } catch {
        target = address;
      }
      const stream = await this.host.openStream(target, PROPOSE_PROTOCOL, signal);
      try {
        stream.send(encodeFrame({ data }, MAX_FORWARD_FRAME_BYTES));
        answer = await readOneFrame(stream);
      } finally {
        await stream.close().catch(() => undefined);
      }
    } catch (err) {
      if (err instanceof ApiError) throw err;
      throw new ApiError('unavailable', `forwarding the write to the leader ${leader} failed: ${(err as Error).message}`);
    }
    const a = answer as ForwardAnswer;
    if (typeof a !== 'object' || a === null || typeof a.ok !== 'boolean') throw new ApiError('internal', 'the leader answered a forwarded write with a malformed message');
    if (!a.ok) throw new ApiError(isApiErrorCode(a.code) ? a.code : 'internal', a.message);
    if (!Number.isSafeInteger(a.index) || a.index < 1) throw new ApiError('internal', 'the leader answered a forwarded write without an index');
    // Read-your-writes on this manager: answer only once the committed entry is applied here too.
    const deadline = Date.now() + FORWARD_TIMEOUT_MS;
    while (this.raft.appliedIndex < a.index) {
      if (this.stopped) throw new ApiError('unavailable', 'this node is shutting down');
      if (Date.now() > deadline) throw new ApiError('unavailable', `the write committed at index ${a.index} but this manager has not applied it yet`);
      await new Promise((resolve) => setTimeout(resolve, APPLY_POLL_MS));
    }
    return a.index;
  }

  private async serve(stream: Stream, remote: string): Promise<void> {
    let reply: ForwardAnswer;
    try {
      const req = await readOneFrame(stream);
      const data = (req as { data?: unknown } | null)?.data;
      if (!(data instanceof Uint8Array)) throw new ApiError('invalid_argument', 'a forwarded write carries no transaction');
      if (!this.raft.isLeader) throw new ApiError('unavailable', 'this manager is no longer the Raft leader: retry');
      reply = { ok: true, index: await proposeHere(this.raft, data) };
    } catch (err) {
      const api = err instanceof ApiError ? err : new ApiError('internal', (err as Error).message);
      if (!(err instanceof ApiError)) this.logger.warn({ err, remote }, 'forwarded write failed');
      reply = { ok: false, code: api.code, message: api.message };
    }
    try {
      stream.send(encodeFrame(reply, MAX_FORWARD_FRAME_BYTES));
      await stream.close();
    } catch (err) {
      this.logger.debug({ err: (err as Error).message, remote }, 'answering a forwarded write failed');
    }
  }
}
