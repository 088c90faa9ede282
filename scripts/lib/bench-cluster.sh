# Starting and stopping local 3-member clusters (our kv-server, and etcd) for scripts/demo and scripts/bench.
# Sourced after env.sh. The caller sets BENCH_TMP (a directory it owns) and calls bench_cleanup on EXIT.

BENCH_TOOL="$SWARM_ROOT/scripts/lib/bench-tool.mjs"
KV_SERVER="$SWARM_ROOT/packages/raft/dist/src/example/kv-server.js"
STARTED_PIDS=()

bench_tool() { node "$BENCH_TOOL" "$@"; }

# Kill a PID only if it is still one of ours: its command line mentions our temp dir (guards PID reuse).
owned_kill() {
  local pid="$1" sig="${2:-KILL}"
  [ -r "/proc/$pid/cmdline" ] || return 0
  if tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$BENCH_TMP"; then
    kill "-$sig" "$pid" 2>/dev/null || true
  fi
}

# Wait (bounded, 10 s) until a PID we started has exited; our children are disowned, so poll.
wait_gone() {
  local pid="$1" n
  for ((n = 0; n < 1000; n++)); do
    [ -d "/proc/$pid" ] || return 0
    # A zombie has exited; its parent (us) reaps it.
    [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = "Z" ] && return 0
    sleep 0.01
  done
  echo "warning: pid $pid still running after 10 s" >&2
}

bench_cleanup() {
  local pid
  for pid in "${STARTED_PIDS[@]}"; do owned_kill "$pid" KILL; done
  for pid in "${STARTED_PIDS[@]}"; do wait_gone "$pid"; done
  [ -n "${BENCH_TMP:-}" ] && [ -d "$BENCH_TMP" ] && rm -rf "$BENCH_TMP"
}

# ---- our kv-server ----
KV_N=3
KV_PIDS=()
KV_URLS=()
KV_RAFT_PORTS=()
KV_CLIENT_PORTS=()
KV_PEERS=""
KV_CLIENT_PEERS=""

kv_setup() {
  local ports i
  read -r -a ports <<<"$(bench_tool free-ports $((2 * KV_N)))"
  KV_PEERS=""
  KV_CLIENT_PEERS=""
  for ((i = 0; i < KV_N; i++)); do
    KV_RAFT_PORTS[i]="${ports[i]}"
    KV_CLIENT_PORTS[i]="${ports[i + KV_N]}"
    KV_URLS[i]="http://127.0.0.1:${KV_CLIENT_PORTS[i]}"
    KV_PEERS+="${KV_PEERS:+,}n$((i + 1))=127.0.0.1:${KV_RAFT_PORTS[i]}"
    KV_CLIENT_PEERS+="${KV_CLIENT_PEERS:+,}n$((i + 1))=127.0.0.1:${KV_CLIENT_PORTS[i]}"
  done
}

# kv_start I [extra kv-server flags...]: start member I (0-based) in the background; logs to BENCH_TMP/nI.log.
kv_start() {
  local i="$1"
  shift
  mkdir -p "$BENCH_TMP/kv"
  node "$KV_SERVER" --id "n$((i + 1))" --peers "$KV_PEERS" --client-peers "$KV_CLIENT_PEERS" \
    --client-port "${KV_CLIENT_PORTS[i]}" --data-dir "$BENCH_TMP/kv/n$((i + 1))" "$@" \
    >>"$BENCH_TMP/kv/n$((i + 1)).log" 2>&1 &
  KV_PIDS[i]=$!
  STARTED_PIDS+=("$!")
  disown "$!" # no "Killed" job notices when we kill -9 it on purpose
}

kv_stop_all() {
  local i
  for ((i = 0; i < KV_N; i++)); do owned_kill "${KV_PIDS[i]}" TERM; done
  for ((i = 0; i < KV_N; i++)); do wait_gone "${KV_PIDS[i]}"; done
}

# ---- etcd ----
ETCD_PIDS=()
ETCD_URLS=()
ETCD_PEER_PORTS=()
ETCD_CLIENT_PORTS=()
ETCD_CLUSTER=""

etcd_setup() {
  local ports i
  read -r -a ports <<<"$(bench_tool free-ports $((2 * KV_N)))"
  ETCD_CLUSTER=""
  for ((i = 0; i < KV_N; i++)); do
    ETCD_PEER_PORTS[i]="${ports[i]}"
    ETCD_CLIENT_PORTS[i]="${ports[i + KV_N]}"
    ETCD_URLS[i]="http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}"
    ETCD_CLUSTER+="${ETCD_CLUSTER:+,}e$((i + 1))=http://127.0.0.1:${ETCD_PEER_PORTS[i]}"
  done
}

# etcd_start I STATE: STATE is "new" for the first start, "existing" for a restart from the data dir.
etcd_start() {
  local i="$1" state="$2"
  mkdir -p "$BENCH_TMP/etcd"
  # Same timing as our defaults (50 ms heartbeat, 500 ms election timeout); etcd's defaults are 100/1000.
  etcd --name "e$((i + 1))" --data-dir "$BENCH_TMP/etcd/e$((i + 1))" \
    --listen-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
    --initial-advertise-peer-urls "http://127.0.0.1:${ETCD_PEER_PORTS[i]}" \
    --listen-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
    --advertise-client-urls "http://127.0.0.1:${ETCD_CLIENT_PORTS[i]}" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state "$state" --initial-cluster-token bench \
    --heartbeat-interval "${ETCD_HEARTBEAT_MS:-50}" --election-timeout "${ETCD_ELECTION_MS:-500}" \
    --logger zap --log-level error \
    >>"$BENCH_TMP/etcd/e$((i + 1)).log" 2>&1 &
  ETCD_PIDS[i]=$!
  STARTED_PIDS+=("$!")
  disown "$!"
}

etcd_stop_all() {
  local i
  for ((i = 0; i < KV_N; i++)); do owned_kill "${ETCD_PIDS[i]}" TERM; done
  for ((i = 0; i < KV_N; i++)); do wait_gone "${ETCD_PIDS[i]}"; done
}
