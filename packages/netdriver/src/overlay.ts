// The overlay data plane of one host: per network a namespace holding a bridge and a VXLAN device (made when the
// network's first local task arrives, removed with its last), per task a namespace with one veth leg on each of its
// networks and one on the host's gateway bridge, and the static FDB/neighbour entries that send frames to peers.

import { createHash } from 'node:crypto';
import { availableParallelism, loadavg } from 'node:os';
import { readFile, rm, writeFile } from 'node:fs/promises';
import type { LbStrategy, NetworkAttachment } from '@swarm/store';
import type { Logger } from '@swarm/wire';
import { EmbeddedDns } from './dns.js';
import { capacityFromLoad, FULL_WEIGHT } from './balance.js';
import { macForIp, type Circuit, type Endpoint, type RemoteEndpoint } from './endpoints.js';
import { lbRuleset, vipBackends } from './vip.js';
import { portClash, publishRuleset, PUBLISH_TABLE, type HostPort } from './publish.js';
import { hostIngressRuleset, ingressBackends, INGRESS_ENDPOINT_NAME, INGRESS_SANDBOX, INGRESS_TABLE, sandboxRuleset, type IngressConfig } from './ingress.js';
import { assert, NetError } from './errors.js';
import { formatIp, isIPv4, parseCidr, parseIp } from './ipam.js';
import { bridgeBatch, inNetns, ipBatch, NetnsDir, type Netns } from './netns.js';
import type { TaskNetworking } from './networking.js';
import { replaceTable } from './nft.js';

/** A host-mode port as the agent hands it over. */
export type PublishedPort = Pick<HostPort, 'protocol' | 'publishedPort' | 'targetPort'>;

/** VXLAN's encapsulation: outer IPv4 (20) + UDP (8) + VXLAN (8) + inner Ethernet (14). */
export const VXLAN_OVERHEAD_BYTES = 50;
/** Docker's VXLAN port. */
export const DEFAULT_DATA_PATH_PORT = 4789;
/** The gateway bridge (Docker's docker_gwbridge) and the subnet its task legs come from. */
export const GATEWAY_BRIDGE = 'swarm_gwbridge';
export const DEFAULT_GATEWAY_SUBNET = '172.18.0.0/16';
const NFT_TABLE = 'swarm_gwbridge';
/** The lock key that orders gateway bridge changes (network ids are never empty). */
const GATEWAY_LOCK = '';
/** The lock key that orders routing-mesh changes (network ids are hex). */
const INGRESS_LOCK = '#ingress';

export interface OverlayDriverOptions {
  /** Where this node keeps its namespace files and records (the daemon's data dir/net). */
  stateDir: string;
  /**
   * This host's underlay address: the VXLAN devices' local end, and where peers send this host's frames. Known
   * once the node is in a swarm (its advertise address): setUnderlay gives it later.
   */
  underlayAddr?: string;
  logger: Logger;
  dataPathPort?: number;
  /** The gateway bridge's subnet: a /16 by default; its first address is the bridge's. */
  gatewaySubnet?: string;
  /**
   * The namespace that plays the host (tests): VXLAN devices and the gateway bridge are made there. Null (the
   * default) is the daemon's own namespace.
   */
  hostNetns?: Netns;
  /**
   * Run the embedded DNS on the gateway bridge's address (default: when the host namespace is the daemon's own;
   * the socket must be opened in the host namespace, which only then is this process's).
   */
  dns?: boolean;
  /** Resolvers for names the swarm does not know (default: the host's resolv.conf). */
  upstreamDns?: readonly string[];
  /** Send connections to a service's VIP to its ready tasks (nft in each task's namespace); default on. */
  loadBalancing?: boolean;
  /**
   * Circuit breaking of local tasks (false: off): every `intervalMs` the refused connections (TCP resets, ICMP port
   * unreachable) each ready task sent are counted; `threshold` in one interval opens its circuit (no traffic, out of
   * DNS) for `cooldownMs` (doubled each time it opens again, up to a minute), then it gets a trickle for `probeMs`;
   * a refusal then opens it again, none closes it.
   */
  circuit?: Partial<CircuitOptions> | false;
  /** This host's load per CPU (load-aware balancing); default the 1-minute load average over the CPU count. */
  hostLoad?: () => number;
}

export interface CircuitOptions {
  intervalMs: number;
  threshold: number;
  cooldownMs: number;
  probeMs: number;
}

export const DEFAULT_CIRCUIT: CircuitOptions = { intervalMs: 500, threshold: 5, cooldownMs: 5_000, probeMs: 5_000 };
/** Longest an open circuit waits before a trickle is tried again. */
const MAX_COOLDOWN_MS = 60_000;
/** How often this host's spare capacity is measured for load-aware balancing. */
const CAPACITY_INTERVAL_MS = 5_000;
/** The bridge table in each network's namespace that counts what local tasks refuse. */
const CB_TABLE = 'swarm_cb';

interface CircuitState {
  state: 'closed' | Circuit;
  untilMs: number;
  cooldownMs: number;
  /** The task's refusals counted so far (the set's counters for its addresses, summed). */
  seen: number;
}

/** A task's leg on one overlay network. */
interface Leg {
  networkId: string;
  vni: number;
  /** In the task's namespace: eth0, eth1, … */
  ifname: string;
  /** In the network's namespace, on its bridge. */
  peerName: string;
  ip: string;
  prefix: number;
  mac: string;
  /** DNS: the task's aliases on this network, and its service's virtual IP here ('' without one). */
  aliases: string[];
  vip: string;
  /** A leg on the ingress network: routing-mesh traffic only, never in DNS answers or VIP tables. */
  ingress?: boolean;
}

/** The names the embedded DNS knows a task by. */
export interface TaskNames {
  /** Its service's name. */
  service: string;
  /** Its own name, `web.1.<task id>`. */
  task: string;
  /** Its service's load-balancing strategy (absent: round-robin). */
  lb?: LbStrategy;
}

/** What is kept on disk per task, so a restarted daemon knows what it made. */
interface TaskRecord {
  taskId: string;
  names: TaskNames;
  /** Host-mode published ports, mapped to its gateway leg on this node. */
  published?: HostPort[];
  /** Running and healthy: only then is it in DNS answers (kept in memory; a restart starts it false). */
  ready: boolean;
  legs: Leg[];
  /** The leg on the gateway bridge, when the task has a network that is not internal. */
  gateway: GatewayLeg | null;
}

/**
 * A task's leg on the gateway bridge. A task on internal networks only gets one too, for the embedded DNS alone:
 * no default route, and the host drops everything from it but DNS questions to the bridge's address.
 */
interface GatewayLeg {
  ifname: string;
  peerName: string;
  ip: string;
  internal?: boolean;
}

interface SandboxRecord {
  networkId: string;
  vni: number;
  subnet: string;
}

interface Sandbox {
  record: SandboxRecord;
  path: string;
  vxlan: string;
  /** Local tasks with a leg on it. */
  tasks: Set<string>;
  /** Remote endpoints programmed into its VXLAN device, by address. */
  programmed: Map<string, Programmed>;
}

type LocalChangeListener = (networkId: string) => void;

/** What the kernel holds of a remote endpoint: its neighbour and FDB entries. */
type Programmed = Pick<RemoteEndpoint, 'ip' | 'mac' | 'host'>;

export class OverlayDriver implements TaskNetworking {
  private readonly log: Logger;
  private readonly ns: NetnsDir;
  private readonly port: number;
  private readonly host: Netns;
  private readonly gatewayBase: number;
  private readonly gatewayPrefix: number;
  private readonly sandboxes = new Map<string, Sandbox>();
  private readonly tasks = new Map<string, TaskRecord>();
  /** What gossip wants programmed per network, kept for sandboxes made later. */
  private readonly wantedPeers = new Map<string, RemoteEndpoint[]>();
  /** One chain of operations per network: a sandbox is made, used and removed in order. */
  private readonly locks = new Map<string, Promise<void>>();
  private readonly gatewayHosts = new Set<number>();
  /** The gateway bridge and its nft table exist (made with the first task that needs them, removed with the last). */
  private gatewayUp = false;
  private readonly listeners = new Set<LocalChangeListener>();
  private readonly dns: EmbeddedDns | null;
  private readonly loadBalancing: boolean;
  /** Tasks whose VIP table must be written again, and the ruleset each was last given. */
  private readonly lbPending = new Set<string>();
  private readonly lbWritten = new Map<string, string>();
  private lbFlush: Promise<void> | null = null;
  /** The routing mesh as the managers last gave it; null: this node serves no ingress port. */
  private ingress: IngressConfig | null = null;
  private readonly circuitOpts: CircuitOptions | null;
  private readonly circuits = new Map<string, CircuitState>();
  private circuitTimer: NodeJS.Timeout | null = null;
  private circuitPolling = false;
  /** This host's spare capacity (1-10) as last measured, and the timer measuring it. */
  private capacity = FULL_WEIGHT;
  private capacityTimer: NodeJS.Timeout | null = null;
  private underlay: string;
  /** The overlay MTU: the underlay interface's less VXLAN's overhead; read when a network namespace is first made. */
  private mtu: number | null = null;
  private closed = false;

  constructor(private readonly opts: OverlayDriverOptions) {
    this.log = opts.logger;
    this.ns = new NetnsDir(opts.stateDir, opts.logger);
    this.port = opts.dataPathPort ?? DEFAULT_DATA_PATH_PORT;
    this.host = opts.hostNetns ?? null;
    const { base, prefix } = parseCidr(opts.gatewaySubnet ?? DEFAULT_GATEWAY_SUBNET);
    this.gatewayBase = base;
    this.gatewayPrefix = prefix;
    assert(prefix >= 8 && prefix <= 28, `gateway subnet prefix /${prefix}`);
    this.underlay = opts.underlayAddr ?? '';
    const dnsOn = opts.dns ?? this.host === null;
    this.loadBalancing = opts.loadBalancing ?? true;
    this.circuitOpts = opts.circuit === false || !this.loadBalancing ? null : { ...DEFAULT_CIRCUIT, ...opts.circuit };
    this.dns = dnsOn
      ? new EmbeddedDns({ view: (ip) => this.dnsView(ip), logger: opts.logger.child({ component: 'dns' }), vipRouted: this.loadBalancing, ...(opts.upstreamDns === undefined ? {} : { upstream: opts.upstreamDns }) })
      : null;
  }

  /** This host's underlay address (the swarm's advertise address); a change applies to networks made after it. */
  setUnderlay(addr: string): void {
    assert(isIPv4(addr), `underlay address ${addr} is IPv4`);
    if (addr !== this.underlay) this.mtu = null;
    this.underlay = addr;
  }

  /**
   * Reads what an earlier run left: task namespaces whose container is still there (`keepTasks`) are kept with
   * their networks' namespaces and programmed peers; everything else this node made is removed.
   */
  async recover(keepTasks: ReadonlySet<string>): Promise<{ kept: string[]; removed: string[] }> {
    const files = await this.ns.list();
    const kept: string[] = [];
    const removed: string[] = [];
    const sandboxRecords = new Map<string, SandboxRecord>();
    for (const f of files.filter((f) => f.startsWith('n-') && f.endsWith('.json'))) {
      const rec = await readJson<SandboxRecord>(this.ns.path(f));
      if (rec !== null) sandboxRecords.set(rec.networkId, rec);
    }
    for (const f of files.filter((f) => f.startsWith('t-') && f.endsWith('.json'))) {
      const rec = await readJson<TaskRecord>(this.ns.path(f));
      if (rec === null) continue;
      const usable = keepTasks.has(rec.taskId) && rec.legs.every((l) => sandboxRecords.has(l.networkId));
      if (!usable) {
        await this.destroyTask(rec);
        removed.push(rec.taskId);
        continue;
      }
      // Records of an earlier version lack the DNS fields; readiness is the agent's to tell again.
      rec.names ??= { service: '', task: '' };
      rec.ready = false;
      for (const leg of rec.legs) {
        leg.aliases ??= [];
        leg.vip ??= '';
      }
      this.tasks.set(rec.taskId, rec);
      if (rec.gateway !== null) this.gatewayHosts.add(parseIp(rec.gateway.ip) - this.gatewayBase);
      for (const leg of rec.legs) {
        let sb = this.sandboxes.get(leg.networkId);
        if (sb === undefined) {
          const sr = sandboxRecords.get(leg.networkId);
          assert(sr !== undefined, 'a kept leg has its network record');
          sb = { record: sr, path: this.ns.path(sandboxName(sr.networkId)), vxlan: vxlanName(sr.vni), tasks: new Set(), programmed: await this.readProgrammed(sr) };
          this.sandboxes.set(sr.networkId, sb);
        }
        sb.tasks.add(rec.taskId);
      }
      kept.push(rec.taskId);
    }
    for (const sr of sandboxRecords.values()) if (!this.sandboxes.has(sr.networkId)) await this.destroySandboxFiles(sr);
    // Namespace files with no record: a crash between making one and writing its record.
    const known = new Set([...this.tasks.keys()].map((id) => taskNsName(id)).concat([...this.sandboxes.keys()].map((id) => sandboxName(id))));
    for (const f of await this.ns.list()) {
      if (f.endsWith('.json') || known.has(f)) continue;
      await this.ns.remove(f);
    }
    await this.withNetwork(GATEWAY_LOCK, async () => {
      if (this.needsGateway()) await this.makeGateway();
      else await this.removeGateway();
    });
    // The ingress sandbox is never kept (no container holds it): the managers' next word makes it again.
    await inNetns(this.log, this.host, 'nft', ['delete', 'table', 'ip', INGRESS_TABLE], { allowFailure: true });
    this.log.info({ kept: kept.length, removed: removed.length, networks: this.sandboxes.size }, 'overlay state recovered');
    return { kept, removed };
  }

  /** Called when the local endpoints of a network change (a task attached or detached). */
  onLocalChange(fn: LocalChangeListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Networks this host has a namespace for (at least one local task). */
  localNetworks(): string[] {
    return [...this.sandboxes.keys()].sort();
  }

  localEndpoints(networkId: string): Endpoint[] {
    const sb = this.sandboxes.get(networkId);
    if (sb === undefined) return [];
    const out: Endpoint[] = [];
    for (const taskId of sb.tasks) {
      const rec = this.tasks.get(taskId);
      if (rec === undefined) continue;
      for (const leg of rec.legs) {
        if (leg.networkId !== networkId) continue;
        const circuit = this.circuits.get(taskId)?.state ?? 'closed';
        const lb = rec.names.lb;
        out.push({
          ip: leg.ip,
          mac: leg.mac,
          taskId,
          service: rec.names.service,
          task: rec.names.task,
          aliases: [...leg.aliases],
          vip: leg.vip,
          ready: rec.ready,
          ...(lb !== undefined && lb !== 'round-robin' ? { lb } : {}),
          ...(circuit !== 'closed' ? { circuit } : {}),
          ...(lb === 'load-aware' && this.capacity !== FULL_WEIGHT ? { capacity: this.capacity } : {}),
        });
      }
    }
    return out.sort((a, b) => (a.ip < b.ip ? -1 : 1));
  }

  async attach(
    taskId: string,
    attachments: readonly NetworkAttachment[],
    names: TaskNames = { service: '', task: '' },
    hostPorts: readonly PublishedPort[] = [],
  ): Promise<{ netnsPath: string; nameserver: string | null }> {
    this.checkOpen();
    if (this.underlay === '') throw new NetError('invalid', 'this node has no underlay address yet: it is not in a swarm');
    assert(!this.tasks.has(taskId), `task ${taskId} is attached once`);
    const mtu = await this.overlayMtu();
    assert(attachments.length > 0, 'a task without networks uses the host network');
    const encrypted = attachments.find((a) => a.network.encrypted);
    if (encrypted !== undefined) {
      // Never send in the clear what was asked to be encrypted: refused until the data plane can encrypt.
      throw new NetError('unsupported', `network ${encrypted.network.name} is encrypted, and this node cannot encrypt overlay traffic yet (docs/networks.md): use a network without --opt encrypted`);
    }
    const rec: TaskRecord = { taskId, names, ready: false, legs: [], gateway: null };
    const path = await this.ns.create(taskNsName(taskId));
    this.tasks.set(taskId, rec);
    try {
      const taskLines = ['link set lo up'];
      for (const [i, a] of attachments.entries()) {
        const [ip, prefixText] = splitCidr(a.addresses[0] ?? '');
        const vip = a.virtualIp === '' ? '' : a.virtualIp.slice(0, a.virtualIp.indexOf('/'));
        const leg: Leg = { networkId: a.networkId, vni: a.network.vni, ifname: `eth${i}`, peerName: vethName('ve', taskId, i), ip, prefix: Number(prefixText), mac: macForIp(ip), aliases: [...a.aliases], vip, ...(a.network.ingress ? { ingress: true } : {}) };
        await this.withNetwork(a.networkId, async () => {
          const sb = await this.ensureSandbox(a);
          await ipBatch(this.log, sb.path, [
            `link add ${leg.peerName} mtu ${mtu} type veth peer name ${leg.ifname} mtu ${mtu} netns ${path}`,
            `link set ${leg.peerName} master br0`,
            `link set ${leg.peerName} up`,
          ]);
          rec.legs.push(leg);
          sb.tasks.add(taskId);
        });
        taskLines.push(`link set ${leg.ifname} address ${leg.mac}`, `addr add ${leg.ip}/${leg.prefix} dev ${leg.ifname}`, `link set ${leg.ifname} up`);
      }
      const internal = attachments.every((a) => a.network.internal);
      await this.withNetwork(GATEWAY_LOCK, async () => {
        await this.makeGateway();
        const hostNumber = this.takeGatewayHost();
        const gw: GatewayLeg = { ifname: `eth${attachments.length}`, peerName: vethName('gw', taskId, 0), ip: formatIp(this.gatewayBase + hostNumber), internal };
        rec.gateway = gw;
        // Before the leg exists: an internal task is never, even for a moment, a host the gateway forwards for.
        if (internal) await inNetns(this.log, this.host, 'nft', ['add', 'element', 'ip', NFT_TABLE, 'internal', `{ ${gw.ip} }`]);
        await ipBatch(this.log, this.host, [
          `link add ${gw.peerName} type veth peer name ${gw.ifname} netns ${path}`,
          `link set ${gw.peerName} master ${GATEWAY_BRIDGE}`,
          // Isolated ports reach the host but not each other: tasks of different networks never meet here.
          `link set ${gw.peerName} type bridge_slave isolated on`,
          `link set ${gw.peerName} up`,
        ]);
        // The MAC made from the address (as on the overlays): a freed gateway address is handed out again at once, and
        // the host's neighbour entry for it, still REACHABLE, must not point at the MAC of a leg that is gone.
        taskLines.push(`link set ${gw.ifname} address ${macForIp(gw.ip)}`, `addr add ${gw.ip}/${this.gatewayPrefix} dev ${gw.ifname}`, `link set ${gw.ifname} up`);
        if (!internal) taskLines.push(`route add default via ${formatIp(this.gatewayBase + 1)}`);
      });
      await ipBatch(this.log, path, taskLines);
      if (hostPorts.length > 0) {
        const gw = rec.gateway;
        if (gw === null || gw.internal === true) throw new NetError('invalid', 'a host-mode published port needs a network with a way out (not --internal)');
        await this.withNetwork(GATEWAY_LOCK, async () => {
          const wanted = hostPorts.map((p) => ({ ...p, taskIp: gw.ip, taskId }));
          const clash = portClash(this.hostPorts(), wanted);
          if (clash !== null) throw new NetError('invalid', `port ${clash.publishedPort}/${clash.protocol} is already published on this node by task ${clash.taskId}`);
          rec.published = wanted;
          await this.writePublishTable();
        });
      }
      await writeFile(this.ns.path(`${taskNsName(taskId)}.json`), JSON.stringify(rec));
    } catch (err) {
      await this.detach(taskId).catch((e: unknown) => this.log.warn({ task: taskId, err: (e as Error).message }, 'could not undo a failed attach'));
      throw err;
    }
    // Its refusals count from zero: destroyTask removed any counter an earlier task at one of its addresses left.
    if (taskId !== INGRESS_SANDBOX && this.circuitOpts !== null) this.circuits.set(taskId, { state: 'closed', untilMs: 0, cooldownMs: this.circuitOpts.cooldownMs, seen: 0 });
    for (const leg of rec.legs) this.emit(leg.networkId);
    // The embedded DNS answers on the gateway bridge's address, which only a task with a leg there reaches.
    return { netnsPath: path, nameserver: rec.gateway !== null && this.dns?.address() != null ? formatIp(this.gatewayBase + 1) : null };
  }

  /** A task turned ready (running, healthy) or stopped being so: its endpoints enter or leave DNS answers. */
  setReady(taskId: string, ready: boolean): void {
    const rec = this.tasks.get(taskId);
    if (rec === undefined || rec.ready === ready) return;
    rec.ready = ready;
    for (const leg of rec.legs) this.emit(leg.networkId);
  }

  /**
   * What the embedded DNS may tell the task whose gateway-bridge address is `askerIp`: for each of its networks,
   * in its order, every endpoint on it (this host's and the peers'); null for an address that is no task's.
   */
  dnsView(askerIp: string): Endpoint[][] | null {
    const rec = [...this.tasks.values()].find((r) => r.gateway?.ip === askerIp);
    return rec === undefined ? null : this.endpointsSeenBy(rec);
  }

  /**
   * For each network of a task, in its order: every endpoint on it, this host's and the peers'. The ingress
   * network is left out: it carries the routing mesh, not service discovery (as Docker's).
   */
  private endpointsSeenBy(rec: TaskRecord): Endpoint[][] {
    return rec.legs.filter((leg) => leg.ingress !== true).map((leg) => this.networkEndpoints(leg.networkId));
  }

  private networkEndpoints(networkId: string): Endpoint[] {
    return [...this.localEndpoints(networkId), ...(this.wantedPeers.get(networkId) ?? [])];
  }

  /**
   * The routing mesh as the managers want it on this node: its address on the ingress network and every service
   * with ingress-mode ports. With at least one port, the node gets an ingress sandbox (a namespace with a leg on
   * `ingress` and one on the gateway bridge) and its host and sandbox nft tables; without, all of it goes.
   */
  async setIngress(config: IngressConfig | null): Promise<void> {
    this.checkOpen();
    const wanted = config !== null && config.services.some((s) => s.ports.length > 0) ? config : null;
    await this.withNetwork(INGRESS_LOCK, async () => {
      const have = this.tasks.get(INGRESS_SANDBOX);
      const haveAddr = have?.legs[0]?.ip;
      const wantAddr = wanted?.attachment.addresses[0]?.split('/')[0];
      if (have !== undefined && (wanted === null || haveAddr !== wantAddr || have.legs[0]?.networkId !== wanted.attachment.networkId)) {
        await this.detach(INGRESS_SANDBOX);
        this.log.info({ address: haveAddr }, 'ingress sandbox removed');
      }
      this.ingress = wanted;
      if (wanted === null) {
        await this.withNetwork(GATEWAY_LOCK, () => this.writeHostIngressTable());
        return;
      }
      if (!this.tasks.has(INGRESS_SANDBOX)) {
        const { netnsPath } = await this.attach(INGRESS_SANDBOX, [wanted.attachment], { service: '', task: INGRESS_ENDPOINT_NAME });
        // It routes: connections come in on its gateway leg and leave on its ingress leg.
        await inNetns(this.log, netnsPath, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
        this.log.info({ address: wantAddr }, 'ingress sandbox made');
      }
      await this.withNetwork(GATEWAY_LOCK, () => this.writeHostIngressTable());
      this.scheduleLb(wanted.attachment.networkId);
    });
  }

  /** The host's routing-mesh table, rebuilt whole (or removed when this node serves no ingress port). Call under GATEWAY_LOCK. */
  private async writeHostIngressTable(): Promise<void> {
    const gw = this.tasks.get(INGRESS_SANDBOX)?.gateway ?? null;
    if (this.ingress === null || gw === null || !this.gatewayUp) {
      await inNetns(this.log, this.host, 'nft', ['delete', 'table', 'ip', INGRESS_TABLE], { allowFailure: true });
      return;
    }
    await inNetns(this.log, this.host, 'nft', ['-f', '-'], { input: hostIngressRuleset(this.ingress.services, gw.ip, GATEWAY_BRIDGE) });
  }

  /** The ingress sandbox's table: every ingress port to the ready tasks of its service. */
  private sandboxTable(rec: TaskRecord): string {
    const leg = rec.legs[0];
    assert(leg !== undefined, 'the ingress sandbox has its leg on ingress');
    const services = this.ingress?.services ?? [];
    return sandboxRuleset(ingressBackends(services, this.networkEndpoints(leg.networkId)), leg.ifname);
  }

  /** Removes the task's namespace and legs, and each network's namespace it was the last local task of. Idempotent. */
  async detach(taskId: string): Promise<void> {
    const rec = this.tasks.get(taskId) ?? (await readJson<TaskRecord>(this.ns.path(`${taskNsName(taskId)}.json`)));
    if (rec === null) {
      await this.ns.remove(taskNsName(taskId));
      return;
    }
    this.tasks.delete(taskId);
    this.lbWritten.delete(taskId);
    this.circuits.delete(taskId);
    await this.destroyTask(rec);
    if (rec.gateway !== null) {
      await this.withNetwork(GATEWAY_LOCK, async () => {
        if ((rec.published ?? []).length > 0) await this.writePublishTable();
        if (!this.needsGateway()) await this.removeGateway();
      });
    }
    for (const leg of rec.legs) {
      await this.withNetwork(leg.networkId, async () => {
        const sb = this.sandboxes.get(leg.networkId);
        if (sb === undefined) return;
        sb.tasks.delete(taskId);
        if (sb.tasks.size === 0) {
          this.sandboxes.delete(leg.networkId);
          await this.destroySandboxFiles(sb.record);
        }
      });
      this.emit(leg.networkId);
    }
  }

  /** The remote endpoints gossip knows for a network: programmed now if this host has the network, else kept. */
  async setPeers(networkId: string, peers: readonly RemoteEndpoint[]): Promise<void> {
    const wanted = peers.filter((p) => p.host !== this.underlay);
    if (wanted.length === 0) this.wantedPeers.delete(networkId);
    else this.wantedPeers.set(networkId, [...wanted]);
    await this.withNetwork(networkId, async () => {
      const sb = this.sandboxes.get(networkId);
      if (sb !== undefined) await this.program(sb);
    });
    this.scheduleLb(networkId);
  }

  /** Resolves once every VIP table change asked for so far is written (tests, and a clean shutdown). */
  async lbSettled(): Promise<void> {
    while (this.lbFlush !== null) await this.lbFlush;
  }

  /** The local tasks on a network get their VIP tables written again, together, on the next turn. */
  private scheduleLb(networkId: string): void {
    if (!this.loadBalancing) return;
    for (const [taskId, rec] of this.tasks) if (rec.legs.some((l) => l.networkId === networkId)) this.lbPending.add(taskId);
    if (this.lbPending.size === 0 || this.lbFlush !== null) return;
    this.lbFlush = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.writeLbTables())
      .finally(() => {
        this.lbFlush = null;
        if (this.lbPending.size > 0) this.scheduleLb('');
      });
  }

  private async writeLbTables(): Promise<void> {
    const ids = [...this.lbPending];
    this.lbPending.clear();
    for (const taskId of ids) {
      const rec = this.tasks.get(taskId);
      if (rec === undefined) {
        this.lbWritten.delete(taskId);
        continue;
      }
      const ruleset = taskId === INGRESS_SANDBOX ? this.sandboxTable(rec) : lbRuleset(vipBackends(this.endpointsSeenBy(rec)));
      if (this.lbWritten.get(taskId) === ruleset) continue;
      try {
        await inNetns(this.log, this.ns.path(taskNsName(taskId)), 'nft', ['-f', '-'], { input: ruleset });
        this.lbWritten.set(taskId, ruleset);
      } catch (err) {
        // The task may have gone meanwhile; otherwise the next change tries again.
        if (this.tasks.has(taskId)) this.log.warn({ task: taskId, err: (err as Error).message }, taskId === INGRESS_SANDBOX ? 'could not write the ingress table' : 'could not write the VIP table');
      }
    }
  }

  /** The remote endpoints programmed on this host for a network (tests and `network inspect` on a node). */
  programmedPeers(networkId: string): Programmed[] {
    return [...(this.sandboxes.get(networkId)?.programmed.values() ?? [])].sort((a, b) => (a.ip < b.ip ? -1 : 1));
  }

  /** Stops taking work; what exists stays (tasks keep running across a daemon restart). */
  close(): void {
    this.closed = true;
    this.stopTimers();
    void this.dns?.stop();
  }

  private stopTimers(): void {
    if (this.circuitTimer !== null) clearInterval(this.circuitTimer);
    if (this.capacityTimer !== null) clearInterval(this.capacityTimer);
    this.circuitTimer = null;
    this.capacityTimer = null;
  }

  /** Circuit breaking and load measuring run while this host has a network namespace; started on the first. */
  private startTimers(): void {
    if (this.closed) return;
    if (this.circuitOpts !== null && this.circuitTimer === null) {
      this.circuitTimer = setInterval(() => void this.pollCircuits(), this.circuitOpts.intervalMs);
      this.circuitTimer.unref();
    }
    if (this.capacityTimer === null) {
      this.capacityTimer = setInterval(() => this.measureCapacity(), CAPACITY_INTERVAL_MS);
      this.capacityTimer.unref();
      this.measureCapacity();
    }
  }

  /** This host's spare capacity; a change is published with the endpoints of load-aware services. */
  private measureCapacity(): void {
    const load = this.opts.hostLoad?.() ?? (loadavg()[0] ?? 0) / Math.max(1, availableParallelism());
    const capacity = capacityFromLoad(load);
    if (capacity === this.capacity) return;
    this.capacity = capacity;
    const nets = new Set<string>();
    for (const rec of this.tasks.values()) if (rec.names.lb === 'load-aware') for (const leg of rec.legs) nets.add(leg.networkId);
    for (const id of nets) this.emit(id);
  }

  /** The circuit of a local task (tests, and `network inspect` on a node). */
  circuitOf(taskId: string): 'closed' | Circuit {
    return this.circuits.get(taskId)?.state ?? 'closed';
  }

  /**
   * Reads, per network namespace with ready local tasks, how many refusals each address sent (the bridge table's
   * counters), and moves each task's circuit: closed -> open past the threshold in one interval; open -> half-open
   * after its cooldown; half-open -> open at any refusal (cooldown doubled), -> closed after the probe time.
   */
  private async pollCircuits(): Promise<void> {
    const o = this.circuitOpts;
    if (o === null || this.circuitPolling || this.closed) return;
    this.circuitPolling = true;
    try {
      const totals = new Map<string, number>();
      for (const sb of [...this.sandboxes.values()]) {
        const local = [...sb.tasks].filter((id) => id !== INGRESS_SANDBOX && this.tasks.get(id)?.ready === true);
        if (local.length === 0) continue;
        const res = await inNetns(this.log, sb.path, 'nft', ['-j', 'list', 'set', 'bridge', CB_TABLE, 'refused'], { allowFailure: true });
        const counters = setCounters(res.stdout);
        for (const id of local) {
          for (const leg of this.tasks.get(id)?.legs ?? []) {
            if (leg.networkId === sb.record.networkId) totals.set(id, (totals.get(id) ?? 0) + (counters.get(leg.ip) ?? 0));
          }
        }
      }
      const now = Date.now();
      for (const [taskId, total] of totals) {
        let c = this.circuits.get(taskId);
        // A task adopted after a restart: what was counted before is not held against it.
        if (c === undefined) this.circuits.set(taskId, (c = { state: 'closed', untilMs: 0, cooldownMs: o.cooldownMs, seen: total }));
        // Counters start again when an element times out or the namespace is made again.
        const fresh = total >= c.seen ? total - c.seen : total;
        c.seen = total;
        const before = c.state;
        if (c.state === 'closed' && fresh >= o.threshold) {
          c.state = 'open';
          c.untilMs = now + c.cooldownMs;
        } else if (c.state === 'open' && now >= c.untilMs) {
          c.state = 'half-open';
          c.untilMs = now + o.probeMs;
        } else if (c.state === 'half-open' && fresh > 0) {
          c.cooldownMs = Math.min(MAX_COOLDOWN_MS, c.cooldownMs * 2);
          c.state = 'open';
          c.untilMs = now + c.cooldownMs;
        } else if (c.state === 'half-open' && now >= c.untilMs) {
          c.state = 'closed';
          c.cooldownMs = o.cooldownMs;
        }
        if (c.state === before) continue;
        this.log.warn({ task: taskId, circuit: c.state, refused: fresh }, c.state === 'open' ? 'task refuses connections: its circuit opens' : `task circuit ${c.state}`);
        for (const leg of this.tasks.get(taskId)?.legs ?? []) this.emit(leg.networkId);
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'circuit poll failed');
    } finally {
      this.circuitPolling = false;
    }
  }

  /**
   * Removes everything this node made: task and network namespaces, the gateway bridge and its nft table (a node
   * leaving the swarm, tests' teardown).
   */
  async destroyAll(): Promise<void> {
    for (const taskId of [...this.tasks.keys()]) await this.detach(taskId);
    const files = await this.ns.list();
    for (const f of files.filter((f) => f.endsWith('.json'))) {
      if (f.startsWith('t-')) {
        const rec = await readJson<TaskRecord>(this.ns.path(f));
        if (rec !== null) await this.destroyTask(rec);
      } else if (f.startsWith('n-')) {
        const rec = await readJson<SandboxRecord>(this.ns.path(f));
        if (rec !== null) await this.destroySandboxFiles(rec);
      }
      await rm(this.ns.path(f), { force: true });
    }
    for (const f of await this.ns.list()) await this.ns.remove(f);
    await this.removeGateway();
    this.stopTimers();
    this.gatewayHosts.clear();
  }

  // ---- internals ------------------------------------------------------------------------------

  private checkOpen(): void {
    if (this.closed) throw new NetError('closed', 'the network driver is closed');
  }

  private emit(networkId: string): void {
    this.scheduleLb(networkId);
    for (const fn of this.listeners) {
      try {
        fn(networkId);
      } catch (err) {
        this.log.error({ err, network: networkId }, 'local endpoint listener threw');
      }
    }
  }

  private async withNetwork<T>(networkId: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(networkId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const chained = prev.then(() => mine);
    this.locks.set(networkId, chained);
    await prev;
    try {
      return await fn();
    } finally {
      release();
      if (this.locks.get(networkId) === chained) this.locks.delete(networkId);
    }
  }

  /** The network's namespace with bridge and VXLAN device; made on first use. Call inside withNetwork. */
  private async ensureSandbox(a: NetworkAttachment): Promise<Sandbox> {
    const existing = this.sandboxes.get(a.networkId);
    if (existing !== undefined) return existing;
    const record: SandboxRecord = { networkId: a.networkId, vni: a.network.vni, subnet: a.network.subnet };
    const vxlan = vxlanName(record.vni);
    const mtu = await this.overlayMtu();
    const path = await this.ns.create(sandboxName(a.networkId));
    try {
      // Made in the host namespace, so its UDP socket is bound there, then moved into the network's namespace.
      await ipBatch(this.log, this.host, [`link del ${vxlan}`], { force: true });
      await ipBatch(this.log, this.host, [
        `link add ${vxlan} type vxlan id ${record.vni} dstport ${this.port} local ${this.underlay} nolearning proxy`,
        `link set ${vxlan} netns ${path}`,
      ]);
      await ipBatch(this.log, path, [
        'link set lo up',
        `link add br0 mtu ${mtu} type bridge`,
        `link set ${vxlan} master br0`,
        `link set ${vxlan} mtu ${mtu} up`,
        'link set br0 up',
      ]);
      if (this.circuitOpts !== null) await inNetns(this.log, path, 'nft', ['-f', '-'], { input: circuitRuleset(vxlan) });
      await writeFile(this.ns.path(`${sandboxName(a.networkId)}.json`), JSON.stringify(record));
    } catch (err) {
      await this.destroySandboxFiles(record);
      throw err;
    }
    const sb: Sandbox = { record, path, vxlan, tasks: new Set(), programmed: new Map() };
    this.sandboxes.set(a.networkId, sb);
    this.startTimers();
    this.log.info({ network: a.networkId, name: a.network.name, vni: record.vni, mtu }, 'network namespace made');
    await this.program(sb);
    return sb;
  }

  /** Makes the sandbox's neighbour and FDB entries match what gossip wants. Call inside withNetwork. */
  private async program(sb: Sandbox): Promise<void> {
    const wanted = new Map((this.wantedPeers.get(sb.record.networkId) ?? []).map((p) => [p.ip, p]));
    const neigh: string[] = [];
    const fdb: string[] = [];
    for (const [ip, old] of sb.programmed) {
      const w = wanted.get(ip);
      if (w !== undefined && w.mac === old.mac && w.host === old.host) continue;
      if (w === undefined || w.mac !== old.mac) {
        neigh.push(`neigh del ${ip} dev ${sb.vxlan}`);
        // The bridge's learned entry too, so no frame for the old MAC is sent to the VXLAN port at all.
        fdb.push(`fdb del ${old.mac} dev ${sb.vxlan} self`, `fdb del ${old.mac} dev ${sb.vxlan} master`);
      }
    }
    for (const [ip, w] of wanted) {
      const old = sb.programmed.get(ip);
      if (old !== undefined && old.mac === w.mac && old.host === w.host) continue;
      neigh.push(`neigh replace ${ip} lladdr ${w.mac} dev ${sb.vxlan} nud permanent`);
      fdb.push(`fdb replace ${w.mac} dev ${sb.vxlan} dst ${w.host} self permanent`);
    }
    if (neigh.length === 0 && fdb.length === 0) return;
    // force: a delete of an entry already gone (the device was remade) must not stop the rest.
    await ipBatch(this.log, sb.path, neigh, { force: true });
    await bridgeBatch(this.log, sb.path, fdb, { force: true });
    sb.programmed = new Map([...wanted].map(([ip, w]) => [ip, { ip, mac: w.mac, host: w.host }]));
    this.log.debug({ network: sb.record.networkId, peers: wanted.size, changes: neigh.length }, 'peers programmed');
  }

  /** What an earlier run programmed, read back from the kernel. */
  private async readProgrammed(sr: SandboxRecord): Promise<Map<string, Programmed>> {
    const path = this.ns.path(sandboxName(sr.networkId));
    const vxlan = vxlanName(sr.vni);
    const out = new Map<string, Programmed>();
    const neigh = await inNetns(this.log, path, 'ip', ['-j', 'neigh', 'show', 'dev', vxlan], { allowFailure: true });
    const fdb = await inNetns(this.log, path, 'bridge', ['-j', 'fdb', 'show', 'dev', vxlan], { allowFailure: true });
    const hostByMac = new Map<string, string>();
    for (const e of parseJsonArray(fdb.stdout)) {
      if (typeof e['mac'] === 'string' && typeof e['dst'] === 'string') hostByMac.set(e['mac'], e['dst']);
    }
    for (const e of parseJsonArray(neigh.stdout)) {
      const ip = e['dst'];
      const mac = e['lladdr'];
      if (typeof ip !== 'string' || typeof mac !== 'string') continue;
      const host = hostByMac.get(mac);
      if (host !== undefined) out.set(ip, { ip, mac, host });
    }
    return out;
  }

  private async destroyTask(rec: TaskRecord): Promise<void> {
    // Deleting one end of a veth deletes both at once; the namespace's own teardown would do it later, asynchronously.
    for (const leg of rec.legs) {
      const sb = this.sandboxes.get(leg.networkId);
      const path = sb?.path ?? this.ns.path(sandboxName(leg.networkId));
      await ipBatch(this.log, path, [`link del ${leg.peerName}`], { force: true }).catch(() => null);
      // The next task at this address starts with no refusals held against it.
      if (sb !== undefined && this.circuitOpts !== null) {
        await inNetns(this.log, path, 'nft', ['delete', 'element', 'bridge', CB_TABLE, 'refused', `{ ${leg.ip} }`], { allowFailure: true });
      }
    }
    if (rec.gateway !== null) {
      await ipBatch(this.log, this.host, [`link del ${rec.gateway.peerName}`], { force: true });
      if (rec.gateway.internal === true && this.gatewayUp) {
        await inNetns(this.log, this.host, 'nft', ['delete', 'element', 'ip', NFT_TABLE, 'internal', `{ ${rec.gateway.ip} }`], { allowFailure: true });
      }
      this.gatewayHosts.delete(parseIp(rec.gateway.ip) - this.gatewayBase);
    }
    await this.ns.remove(taskNsName(rec.taskId));
    await rm(this.ns.path(`${taskNsName(rec.taskId)}.json`), { force: true });
  }

  private async destroySandboxFiles(sr: SandboxRecord): Promise<void> {
    const path = this.ns.path(sandboxName(sr.networkId));
    // The VXLAN device goes first, at once: a namespace is torn down asynchronously, and a new device with the
    // same VNI in the host namespace would clash with it until then.
    await ipBatch(this.log, path, [`link del ${vxlanName(sr.vni)}`, 'link del br0'], { force: true }).catch(() => null);
    await this.ns.remove(sandboxName(sr.networkId));
    await rm(this.ns.path(`${sandboxName(sr.networkId)}.json`), { force: true });
    this.log.info({ network: sr.networkId, vni: sr.vni }, 'network namespace removed');
  }

  /** Every host-mode port of the tasks on this node. */
  private hostPorts(): HostPort[] {
    return [...this.tasks.values()].flatMap((t) => t.published ?? []);
  }

  /** The node's published-port table, rebuilt whole from the tasks' records. Call under GATEWAY_LOCK. */
  private async writePublishTable(): Promise<void> {
    await inNetns(this.log, this.host, 'nft', ['-f', '-'], { input: publishRuleset(this.hostPorts()) });
  }

  private needsGateway(): boolean {
    return [...this.tasks.values()].some((t) => t.gateway !== null);
  }

  /** The bridge and the nft table go when the last task with a way out goes: nothing is left behind. Call under GATEWAY_LOCK. */
  private async removeGateway(): Promise<void> {
    await this.dns?.stop();
    await ipBatch(this.log, this.host, [`link del ${GATEWAY_BRIDGE}`], { force: true });
    await inNetns(this.log, this.host, 'nft', ['delete', 'table', 'ip', NFT_TABLE], { allowFailure: true });
    await inNetns(this.log, this.host, 'nft', ['delete', 'table', 'ip', PUBLISH_TABLE], { allowFailure: true });
    await inNetns(this.log, this.host, 'nft', ['delete', 'table', 'ip', INGRESS_TABLE], { allowFailure: true });
    if (this.gatewayUp) this.log.info({ bridge: GATEWAY_BRIDGE }, 'gateway bridge removed');
    this.gatewayUp = false;
  }

  /** The gateway bridge with its address, masquerade for what leaves through it, and forwarding on. Call under GATEWAY_LOCK. */
  private async makeGateway(): Promise<void> {
    if (this.gatewayUp) return;
    const gatewayIp = formatIp(this.gatewayBase + 1);
    const subnet = `${formatIp(this.gatewayBase)}/${this.gatewayPrefix}`;
    const exists = await inNetns(this.log, this.host, 'ip', ['link', 'show', GATEWAY_BRIDGE], { allowFailure: true });
    if (exists.code !== 0) {
      // A MAC of its own, set: otherwise a bridge takes its lowest port's, and changes it as ports come and go; a task
      // that cached the old one would then send to a (isolated) port instead of the host and lose its way out.
      await ipBatch(this.log, this.host, [
        `link add ${GATEWAY_BRIDGE} type bridge`,
        `link set ${GATEWAY_BRIDGE} address ${macForIp(gatewayIp)}`,
        `addr add ${gatewayIp}/${this.gatewayPrefix} dev ${GATEWAY_BRIDGE}`,
        `link set ${GATEWAY_BRIDGE} up`,
      ]);
    }
    const internal = [...this.tasks.values()].flatMap((t) => (t.gateway?.internal === true ? [t.gateway.ip] : []));
    const ruleset = replaceTable(
      'ip',
      NFT_TABLE,
      [
        { name: 'postrouting', type: 'nat', hook: 'postrouting', priority: 'srcnat', rules: [`ip saddr ${subnet} oifname != "${GATEWAY_BRIDGE}" masquerade`] },
        { name: 'input', type: 'filter', hook: 'input', priority: 'filter', rules: [`ip saddr @internal ip daddr ${gatewayIp} udp dport 53 accept`, 'ip saddr @internal drop'] },
        { name: 'forward', type: 'filter', hook: 'forward', priority: 'filter', rules: ['ip saddr @internal drop', 'ip daddr @internal drop'] },
      ],
      // The legs of tasks on internal networks only: DNS questions to the bridge, nothing else, nowhere.
      [`set internal { type ipv4_addr;${internal.length > 0 ? ` elements = { ${internal.join(', ')} };` : ''} }`],
    );
    await inNetns(this.log, this.host, 'nft', ['-f', '-'], { input: ruleset });
    await inNetns(this.log, this.host, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
    this.gatewayUp = true;
    if (this.hostPorts().length > 0) await this.writePublishTable();
    this.log.info({ bridge: GATEWAY_BRIDGE, subnet }, 'gateway bridge ready');
    try {
      await this.dns?.start(gatewayIp);
    } catch (err) {
      // Tasks then keep the host's resolv.conf: no swarm names, but a working resolver.
      this.log.warn({ err: (err as Error).message, address: gatewayIp }, 'the embedded DNS could not listen; tasks use the host resolvers');
    }
  }

  private takeGatewayHost(): number {
    const total = 2 ** (32 - this.gatewayPrefix);
    for (let h = 2; h < total - 1; h++) {
      if (!this.gatewayHosts.has(h)) {
        this.gatewayHosts.add(h);
        return h;
      }
    }
    throw new NetError('exhausted', `the gateway bridge's subnet has no free address for another task`);
  }

  private async overlayMtu(): Promise<number> {
    if (this.mtu === null) this.mtu = (await this.underlayMtu()) - VXLAN_OVERHEAD_BYTES;
    return this.mtu;
  }

  private async underlayMtu(): Promise<number> {
    const res = await inNetns(this.log, this.host, 'ip', ['-j', 'addr', 'show'], { allowFailure: true });
    for (const link of parseJsonArray(res.stdout)) {
      const infos = link['addr_info'];
      if (!Array.isArray(infos)) continue;
      const hit = infos.some((i: unknown) => typeof i === 'object' && i !== null && (i as Record<string, unknown>)['local'] === this.underlay);
      if (hit && typeof link['mtu'] === 'number') return link['mtu'];
    }
    this.log.warn({ underlay: this.underlay }, 'no interface holds the underlay address; assuming MTU 1500');
    return 1500;
  }
}

// ---- names and addresses ----------------------------------------------------------------------

function taskNsName(taskId: string): string {
  return `t-${taskId}`;
}

function sandboxName(networkId: string): string {
  return `n-${networkId}`;
}

/** Interface names have at most 15 bytes: `vx-` and the VNI (at most 8 digits). */
function vxlanName(vni: number): string {
  return `vx-${vni}`;
}

/**
 * `ve`/`gw`, ten hex digits of a hash of the task id, the leg's index: unique within the namespace it lives in
 * (task ids may share a prefix; 40 bits of hash do not collide among the tasks of one host).
 */
function vethName(kind: 've' | 'gw', taskId: string, index: number): string {
  const name = `${kind}${createHash('sha256').update(taskId).digest('hex').slice(0, 10)}${index}`;
  assert(name.length <= 15, `interface name ${name} fits`);
  return name;
}

function splitCidr(cidr: string): [string, string] {
  const slash = cidr.indexOf('/');
  if (slash < 0) throw new NetError('invalid', `attachment address ${JSON.stringify(cidr)} is not ADDRESS/PREFIX`);
  return [cidr.slice(0, slash), cidr.slice(slash + 1)];
}


async function readJson<T>(path: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return null;
  }
}

function parseJsonArray(text: string): Array<Record<string, unknown>> {
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) ? v.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : [];
  } catch {
    return [];
  }
}

/**
 * The network namespace's count of refusals by address: connections refused (TCP) and ICMP port-unreachables that local tasks send
 * through the bridge (what comes in from the VXLAN device is the peers' to count). Elements expire after an hour
 * without one, which bounds the set; a poll sees a counter start again and takes it as new.
 */
function circuitRuleset(vxlan: string): string {
  const rules = [
    // A refusal is a reset answering a SYN: RST+ACK with sequence number 0. Resets of established connections are
    // not counted: servers send them whenever they close with unread data (busybox httpd does, every request).
    `iifname != "${vxlan}" tcp flags & (rst | ack) == rst | ack tcp sequence 0 update @refused { ip saddr }`,
    `iifname != "${vxlan}" icmp type destination-unreachable icmp code port-unreachable update @refused { ip saddr }`,
  ];
  const set = 'set refused {\n  type ipv4_addr\n  size 65536\n  flags dynamic,timeout\n  timeout 1h\n  counter\n}';
  return replaceTable('bridge', CB_TABLE, [{ name: 'forward', type: 'filter', hook: 'forward', priority: '0', rules }], [set]);
}

/** `nft -j list set`'s elements with counters, as address -> packets. */
function setCounters(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const item of parseJsonArray(parseNftables(text))) {
    const set = item['set'];
    if (typeof set !== 'object' || set === null) continue;
    const elems = (set as Record<string, unknown>)['elem'];
    if (!Array.isArray(elems)) continue;
    for (const e of elems) {
      const inner = typeof e === 'object' && e !== null ? (e as Record<string, unknown>)['elem'] : undefined;
      if (typeof inner !== 'object' || inner === null) continue;
      const val = (inner as Record<string, unknown>)['val'];
      const counter = (inner as Record<string, unknown>)['counter'];
      const packets = typeof counter === 'object' && counter !== null ? (counter as Record<string, unknown>)['packets'] : undefined;
      if (typeof val === 'string' && typeof packets === 'number') out.set(val, packets);
    }
  }
  return out;
}

/** The `nftables` array of nft's JSON output, as text for parseJsonArray ('[]' when there is none). */
function parseNftables(text: string): string {
  try {
    const v = JSON.parse(text) as { nftables?: unknown };
    return JSON.stringify(Array.isArray(v.nftables) ? v.nftables : []);
  } catch {
    return '[]';
  }
}
