// `swarm daemon`: runs this machine's node in the foreground until SIGTERM/SIGINT, then shuts down cleanly
// (API socket, gossip, Raft, data dir lock). Logs are JSON lines on stderr.

import type { Command } from 'commander';
import { hostname } from 'node:os';
import { componentLogger } from '@swarm/wire';
import { CliError, socketPath, collect } from './context.js';

/** A shutdown that hangs (a stuck disk, say) must not keep the process alive forever after a signal. */
const SHUTDOWN_DEADLINE_MS = 15_000;


function parsePort(value: string): number {
  if (!/^\d{1,5}$/.test(value) || Number(value) > 65535) throw new CliError(`--gossip-port ${JSON.stringify(value)} is not a port number (0-65535)`);
  return Number(value);
}

export function registerDaemonCommand(program: Command): void {
  program
    .command('daemon')
    .description('run this machine\'s swarm node (the other commands talk to it over its socket)')
    .option('-H, --socket <path>', 'the unix socket to serve the API on (default $SWARM_SOCKET or /run/swarm/swarm.sock)')
    .option('--data-dir <dir>', 'where the node keeps its state (default $SWARM_DATA_DIR or /var/lib/swarm)')
    .option('--hostname <name>', 'hostname the node reports (default $SWARM_HOSTNAME or the machine\'s)')
    .option('--gossip-port <port>', 'port of the libp2p gossip host on the listen address (default 7946; 0 = any)', parsePort)
    .option('--runtime <name>', 'container runtime: auto (default: runc when root on Linux with runc and conmon, else process), runc or process')
    .option('--registry-mirror <url>', "a mirror tried first for Docker Hub images, e.g. http://10.250.0.1:5000 (repeatable; Docker's registry-mirrors)", collect, [])
    .option('--insecure-registry <host:port>', "a registry reached over plain HTTP (repeatable; loopback ones always are; Docker's insecure-registries)", collect, [])
    .action(async (opts: { dataDir?: string; hostname?: string; gossipPort?: number; runtime?: string; registryMirror: string[]; insecureRegistry: string[] }, command: Command) => {
      const runtime = opts.runtime ?? process.env['SWARM_RUNTIME'] ?? 'auto';
      if (runtime !== 'auto' && runtime !== 'runc' && runtime !== 'process') throw new CliError(`--runtime ${JSON.stringify(runtime)}: use auto, runc or process`);
      // The daemon (libp2p, fastify, raft) loads only for this verb: client verbs stay quick to start.
      const { startDaemon, DaemonError, DEFAULT_DATA_DIR } = await import('@swarm/daemon');
      const dataDir = opts.dataDir ?? process.env['SWARM_DATA_DIR'] ?? DEFAULT_DATA_DIR;
      const nodeName = opts.hostname ?? process.env['SWARM_HOSTNAME'] ?? hostname();
      const logger = componentLogger(nodeName, 'daemon');
      const daemon = await startDaemon({
        dataDir,
        socketPath: socketPath(command),
        hostname: nodeName,
        logger,
        loggerFor: (component) => componentLogger(nodeName, component),
        ...(opts.gossipPort === undefined ? {} : { gossipPort: opts.gossipPort }),
        runtime,
        registryMirrors: opts.registryMirror,
        insecureRegistries: opts.insecureRegistry,
      }).catch((err: unknown) => {
        // A locked data dir or a busy socket is the user's to fix: one line, no stack.
        if (err instanceof DaemonError || (err instanceof Error && err.name === 'ApiError')) throw new CliError(err.message);
        throw err;
      });
      await new Promise<void>((resolve) => {
        const stop = (signal: NodeJS.Signals): void => {
          logger.info({ signal }, 'shutting down');
          process.off('SIGTERM', stop);
          process.off('SIGINT', stop);
          const deadline = setTimeout(() => {
            logger.error({ deadlineMs: SHUTDOWN_DEADLINE_MS }, 'shutdown did not finish in time; exiting anyway');
            process.exit(1);
          }, SHUTDOWN_DEADLINE_MS);
          deadline.unref();
          daemon.close().then(resolve, (err: unknown) => {
            logger.error({ err }, 'shutdown failed');
            resolve();
          });
        };
        process.on('SIGTERM', stop);
        process.on('SIGINT', stop);
      });
      // Whatever a library left scheduled (a retry timer, say) must not keep a stopped daemon's process alive.
      process.exit(0);
    });
}
