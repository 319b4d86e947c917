#!/usr/bin/env bash
# net_compare.sh: the server benchmarks of issue 6, in one run, one table.
#
#   bench/net_compare.sh            (from the repository root)
#
# Echo: the greenring echo example (examples/echo_server.c) against two
# hand-written C baselines, raw liburing (bench/echo_liburing.c: multishot
# accept + multishot recv + provided buffer ring) and edge-triggered epoll
# (bench/echo_epoll.c), driven by bench/loadgen.c, for
#   pp1   1 connection ping-pong, 64 B    (measures wake-up latency)
#   pp50  50 connections ping-pong, 64 B
#   c200  200 connections x 8 in flight x 512 B
# HTTP: wrk against the HTTP example (examples/http_server.c, keep-alive
# hello route) and against nginx with the same number of workers.
#
# Every server is started and killed by this script; every run is bounded
# (timeout). Only loopback addresses are used. Servers run on SERVER_CPUS
# with SERVER_THREADS threads/workers/nginx workers, the load generators on
# CLIENT_CPUS (taskset), so the server's CPU time is its own. The servers
# of one scenario run back to back, ROUNDS times in turn, and the table
# shows the median round of each (quote ratios from one run: run-to-run
# spread on a small VM is often 20%).
#
# For each run: messages (or requests) per second, latency percentiles, and
# the server's CPU time per message: the sum of
# /proc/PID/task/*/schedstat (user + system time of every thread) over the
# measured window, divided by the messages in it.
#
# Environment (defaults):
#   SERVER_CPUS=1 CLIENT_CPUS=0 SERVER_THREADS=1 ROUNDS=3 DURATION=5 WARMUP=1
#   HTTP_CONNS=100 BIN_DIR=<build here with cc -O2>  CC=cc  PARTS="echo http"
#   PRIORITY="nice -n -20" as root (else empty): servers and load generators
#     then win the CPUs they are pinned to against other work on a shared
#     machine, which keeps the numbers comparable.
#   CPU_CAP=PERCENT (empty: no cap): run every server in a CPU cgroup capped
#     at PERCENT of one CPU (cgroup v2 cpu.max or v1 cfs quota, 10 ms
#     period; needs root). With the server capped below what the load
#     generator can drive, the server is the bottleneck and messages/s and
#     requests/s compare the servers' own cost, not the client's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SERVER_CPUS=${SERVER_CPUS:-1}
CLIENT_CPUS=${CLIENT_CPUS:-0}
SERVER_THREADS=${SERVER_THREADS:-1}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
HTTP_CONNS=${HTTP_CONNS:-100}
PARTS=${PARTS:-echo http}
CC=${CC:-cc}
PORT_BASE=${PORT_BASE:-17300}
if [[ -z ${PRIORITY+x} ]]; then
    PRIORITY=""
    [[ $(id -u) -eq 0 ]] && PRIORITY="nice -n -20"
fi
CPU_CAP=${CPU_CAP:-}
read -r -a prio <<<"$PRIORITY"
# Servers are started inline (`"${prio[@]}" "${cap[@]}" taskset ... &`) so
# that $! is the server itself (nice, sh and taskset exec it); clients
# through this.
pin_client() { "${prio[@]}" taskset -c "$CLIENT_CPUS" "$@"; }

work=$(mktemp -d "${TMPDIR:-/tmp}/net_compare.XXXXXX")
pids=()
cgroup=""
cleanup() {
    for p in "${pids[@]:-}"; do [[ -n $p ]] && kill -KILL "$p" 2>/dev/null || true; done
    # Its processes are gone (killed above or stopped earlier): remove it.
    [[ -n $cgroup ]] && { sleep 0.2; rmdir "$cgroup" 2>/dev/null || true; }
    rm -rf "$work"
}
trap cleanup EXIT

# ---- CPU cap ---------------------------------------------------------------
# cap: the prefix that starts a server inside the capped cgroup (a shell
# that moves itself there, then execs the server: its children, nginx's
# workers, inherit the cgroup).
cap=()
if [[ -n $CPU_CAP ]]; then
    [[ $CPU_CAP =~ ^[0-9]+$ && $CPU_CAP -ge 5 && $CPU_CAP -le 100 ]] ||
        { echo "net_compare: CPU_CAP must be a percentage (5-100)" >&2; exit 2; }
    quota=$((CPU_CAP * 100)) # microseconds per 10 ms period
    if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
        cgroup=/sys/fs/cgroup/net_compare.$$
        echo "+cpu" >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null || true
        mkdir "$cgroup" && echo "$quota 10000" >"$cgroup/cpu.max"
    elif [[ -d /sys/fs/cgroup/cpu ]]; then
        cgroup=/sys/fs/cgroup/cpu/net_compare.$$
        mkdir "$cgroup" && echo 10000 >"$cgroup/cpu.cfs_period_us" &&
            echo "$quota" >"$cgroup/cpu.cfs_quota_us"
    fi || { echo "net_compare: cannot create a CPU cgroup (root and cgroupfs needed)" >&2; exit 1; }
    [[ -n $cgroup ]] || { echo "net_compare: no cgroup filesystem for CPU_CAP" >&2; exit 1; }
    cap=(env "NET_COMPARE_CGROUP=$cgroup/cgroup.procs" sh -c 'echo $$ >"$NET_COMPARE_CGROUP" && exec "$@"' sh)
fi

# ---- build ---------------------------------------------------------------
BIN_DIR=${BIN_DIR:-}
if [[ -z $BIN_DIR ]]; then
    BIN_DIR=$work/bin
    mkdir -p "$BIN_DIR"
    arch=$(uname -m)
    flags=(-std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -Iinclude -Iruntime)
    echo "building with $CC -O2 ..." >&2
    mapfile -t lib_src < <(find runtime -name '*.c' | sort)
    for ex in echo_server http_server; do
        "$CC" "${flags[@]}" "examples/$ex.c" "${lib_src[@]}" "runtime/arch/switch_$arch.S" \
            -luring -pthread -o "$BIN_DIR/$ex"
    done
    "$CC" "${flags[@]}" bench/echo_liburing.c -luring -pthread -o "$BIN_DIR/echo_liburing"
    "$CC" "${flags[@]}" bench/echo_epoll.c -pthread -o "$BIN_DIR/echo_epoll"
    "$CC" "${flags[@]}" bench/loadgen.c -pthread -o "$BIN_DIR/loadgen"
fi
for b in echo_server http_server echo_liburing echo_epoll loadgen; do
    [[ -x $BIN_DIR/$b ]] || { echo "net_compare: $BIN_DIR/$b missing" >&2; exit 1; }
done

# ---- helpers -------------------------------------------------------------
port=$PORT_BASE
next_port() { port=$((port + 1)); }

wait_port() { # wait up to 5 s for 127.0.0.1:$1 to accept
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "net_compare: nothing listens on port $1" >&2
    return 1
}

start_server() { # name port -> sets $server_pid
    local name=$1 p=$2
    case $name in
    greenring) "${prio[@]}" "${cap[@]}" taskset -c "$SERVER_CPUS" "$BIN_DIR/echo_server" -p "$p" -w "$SERVER_THREADS" >/dev/null & ;;
    liburing) "${prio[@]}" "${cap[@]}" taskset -c "$SERVER_CPUS" "$BIN_DIR/echo_liburing" -p "$p" -t "$SERVER_THREADS" >/dev/null & ;;
    epoll) "${prio[@]}" "${cap[@]}" taskset -c "$SERVER_CPUS" "$BIN_DIR/echo_epoll" -p "$p" -t "$SERVER_THREADS" >/dev/null & ;;
    esac
    server_pid=$!
    pids+=("$server_pid")
    wait_port "$p"
}

stop_server() {
    kill -TERM "$1" 2>/dev/null || true
    timeout 5 tail --pid="$1" -f /dev/null 2>/dev/null || kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# Sum of the on-CPU time (ns) of every thread of the given processes.
cpu_ns() {
    local total=0 f v
    for pid in "$@"; do
        for f in /proc/"$pid"/task/*/schedstat; do
            read -r v _ <"$f" 2>/dev/null || continue
            total=$((total + v))
        done
    done
    echo "$total"
}

declare -A result # "$scenario/$server/$round" -> RESULT line fields

run_echo() { # scenario server round conns inflight size
    local sc=$1 srv=$2 r=$3 c=$4 n=$5 s=$6
    next_port
    start_server "$srv" "$port"
    local out
    out=$(timeout $((DURATION + WARMUP + 40)) "${prio[@]}" taskset -c "$CLIENT_CPUS" "$BIN_DIR/loadgen" \
        -p "$port" -c "$c" -n "$n" -s "$s" -d "$DURATION" -w "$WARMUP" -P "$server_pid" \
        -l "$sc/$srv" | grep '^RESULT' || echo "RESULT failed=1")
    stop_server "$server_pid"
    result[$sc/$srv/$r]=$out
    echo "  $sc $srv round $r: $(echo "$out" | sed 's/RESULT //')" >&2
}

field() { # RESULT-line key
    sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$1"
}

median_round() { # scenario server -> the RESULT line of the median rate
    local sc=$1 srv=$2 lines=()
    for r in $(seq 1 "$ROUNDS"); do lines+=("${result[$sc/$srv/$r]}"); done
    printf '%s\n' "${lines[@]}" | awk '{for(i=1;i<=NF;i++) if($i ~ /^rate=/){split($i,a,"="); print a[2] "\t" $0}}' |
        sort -n | awk -v m=$(((ROUNDS + 1) / 2)) 'NR==m{sub(/^[^\t]*\t/,""); print}'
}

# ---- echo ---------------------------------------------------------------
servers=(greenring liburing epoll)
scenarios=("pp1 1 1 64" "pp50 50 1 64" "c200 200 8 512")
echo "priority: ${PRIORITY:-default}; server CPU cap: ${CPU_CAP:+$CPU_CAP% of one CPU}${CPU_CAP:-none}" >&2
echo "echo: server on CPU $SERVER_CPUS ($SERVER_THREADS thread(s)), loadgen on CPU $CLIENT_CPUS, ${DURATION}s x $ROUNDS rounds" >&2
[[ $PARTS == *echo* ]] || scenarios=()
for spec in "${scenarios[@]}"; do
    read -r sc c n s <<<"$spec"
    for r in $(seq 1 "$ROUNDS"); do
        for srv in "${servers[@]}"; do
            run_echo "$sc" "$srv" "$r" "$c" "$n" "$s"
        done
    done
done

# ---- HTTP ---------------------------------------------------------------
declare -A http # "$server/$round" -> "rps p50 p99 ns_per_req"
run_wrk() { # label round pid... (server already listening on $port)
    local label=$1 r=$2
    shift 2
    pin_client timeout 30 wrk -t1 -c"$HTTP_CONNS" -d"${WARMUP}s" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    local c0 c1 out rps reqs p50 p99 per="-"
    c0=$(cpu_ns "$@")
    out=$(pin_client timeout $((DURATION + 30)) wrk -t1 -c"$HTTP_CONNS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/" 2>&1 || true)
    c1=$(cpu_ns "$@")
    rps=$(awk '/^Requests\/sec/{print $2}' <<<"$out")
    reqs=$(awk '/requests in/{print $1}' <<<"$out")
    p50=$(awk '$1=="50%"{print $2}' <<<"$out")
    p99=$(awk '$1=="99%"{print $2}' <<<"$out")
    [[ -n $reqs && $reqs -gt 0 ]] && per=$(( (c1 - c0) / reqs ))
    http[$label/$r]="${rps:-0} ${p50:--} ${p99:--} $per"
    echo "  http $label round $r: ${rps:-failed} req/s, $per ns/req" >&2
}

write_nginx_conf() {
    mkdir -p "$work/nginx"
    cat >"$work/nginx/nginx.conf" <<NGINX
worker_processes $SERVER_THREADS;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$port;
        location / { default_type text/plain; return 200 "Hello, World!\n"; }
    }
}
NGINX
}

http_servers=()
if [[ $PARTS == *http* ]] && command -v wrk >/dev/null; then
    http_servers=(greenring)
    command -v nginx >/dev/null && http_servers+=(nginx)
    echo "http: wrk -t1 -c$HTTP_CONNS, ${DURATION}s x $ROUNDS rounds" >&2
    for r in $(seq 1 "$ROUNDS"); do
        next_port
        "${prio[@]}" "${cap[@]}" taskset -c "$SERVER_CPUS" "$BIN_DIR/http_server" -p "$port" -w "$SERVER_THREADS" >/dev/null &
        hp=$!
        pids+=("$hp")
        wait_port "$port"
        run_wrk greenring "$r" "$hp"
        stop_server "$hp"
        if [[ ${#http_servers[@]} -gt 1 ]]; then
            next_port
            write_nginx_conf
            "${prio[@]}" "${cap[@]}" taskset -c "$SERVER_CPUS" nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" 2>/dev/null &
            np=$!
            pids+=("$np")
            wait_port "$port"
            sleep 0.2
            run_wrk nginx "$r" "$np" $(pgrep -P "$np" | tr '\n' ' ')
            stop_server "$np"
        fi
    done
fi

# ---- table ----------------------------------------------------------------
# Rounds run the servers back to back, so each round's ratio compares them
# under the same conditions; the run-to-run spread on a shared VM (often
# 20%) cancels out of it. A ratio column is the median over the rounds of
# that round's ratio, with the number of rounds the server was ahead in.
paired() { # "a b" per line -> "median(a/b)x (rounds with a>b/rounds)"
    awk '$1 > 0 && $2 > 0 {r[n++] = $1 / $2; w += $1 > $2}
        END {
            if (n == 0) { print "-"; exit }
            for (i = 0; i < n; i++) for (j = i + 1; j < n; j++) if (r[j] < r[i]) { t = r[i]; r[i] = r[j]; r[j] = t }
            m = n % 2 ? r[(n - 1) / 2] : (r[n / 2 - 1] + r[n / 2]) / 2
            printf "%.2fx (%d/%d)", m, w, n
        }'
}

echo_pairs() { # scenario server baseline key invert -> "a b" per round
    local r a b
    [[ $2 == "$3" ]] && return 0 # paired prints "-" for a server against itself
    for r in $(seq 1 "$ROUNDS"); do
        a=$(field "${result[$1/$2/$r]}" "$4")
        b=$(field "${result[$1/$3/$r]}" "$4")
            if [[ $5 == invert ]]; then echo "${b:-0} ${a:-0}"; else echo "${a:-0} ${b:-0}"; fi
    done
}

echo
if [[ ${#scenarios[@]} -gt 0 ]]; then
    echo "Echo (server: $SERVER_THREADS thread(s) on CPU $SERVER_CPUS${CPU_CAP:+, capped at $CPU_CAP% of a CPU}; median of $ROUNDS rounds of ${DURATION}s)"
    echo "vs X: msg/s over X's in the same round; cpu vs X: X's server CPU per message over this one's (> 1: cheaper)"
    printf '%-6s %-10s %10s %8s %8s %9s %10s %12s %12s %12s %12s\n' scen server "msg/s" "p50 us" "p99 us" "p99.9 us" "ns/msg" \
        "vs uring" "vs epoll" "cpu vs uring" "cpu vs epoll"
fi
for spec in "${scenarios[@]}"; do
    read -r sc _ <<<"$spec"
    for srv in "${servers[@]}"; do
        line=$(median_round "$sc" "$srv")
        printf '%-6s %-10s %10s %8s %8s %9s %10s %12s %12s %12s %12s\n' "$sc" "$srv" "$(field "$line" rate)" \
            "$(field "$line" p50_us)" "$(field "$line" p99_us)" "$(field "$line" p999_us)" \
            "$(field "$line" server_cpu_ns_per_msg)" \
            "$(echo_pairs "$sc" "$srv" liburing rate plain | paired)" \
            "$(echo_pairs "$sc" "$srv" epoll rate plain | paired)" \
            "$(echo_pairs "$sc" "$srv" liburing server_cpu_ns_per_msg invert | paired)" \
            "$(echo_pairs "$sc" "$srv" epoll server_cpu_ns_per_msg invert | paired)"
    done
done
[[ $PARTS == *http* ]] || exit 0
echo
echo "HTTP hello, keep-alive (wrk -t1 -c$HTTP_CONNS; server: $SERVER_THREADS worker(s) on CPU $SERVER_CPUS${CPU_CAP:+, capped at $CPU_CAP% of a CPU}; median of $ROUNDS rounds of ${DURATION}s)"
if [[ ${#http_servers[@]} -eq 0 ]]; then
    echo "wrk is not installed"
else
    command -v nginx >/dev/null || echo "nginx is not installed"
    printf '%-10s %12s %10s %10s %11s %12s %14s\n' server "req/s" "p50" "p99" "ns/req" "vs nginx" "cpu vs nginx"
    for srv in "${http_servers[@]}"; do
        read -r rps p50 p99 per <<<"$(for r in $(seq 1 "$ROUNDS"); do echo "${http[$srv/$r]}"; done |
            sort -n | awk -v m=$(((ROUNDS + 1) / 2)) 'NR==m')"
        vs="-" cvs="-"
        if [[ " ${http_servers[*]} " == *" nginx "* ]]; then
            [[ $srv == nginx ]] || vs=$(for r in $(seq 1 "$ROUNDS"); do
                read -r a _ <<<"${http[$srv/$r]}"
                read -r b _ <<<"${http[nginx/$r]}"
                echo "$a $b"
            done | paired)
            [[ $srv == nginx ]] || cvs=$(for r in $(seq 1 "$ROUNDS"); do
                read -r _ _ _ ca <<<"${http[$srv/$r]}"
                read -r _ _ _ cb <<<"${http[nginx/$r]}"
                [[ $ca == - || $cb == - ]] && ca=0 cb=0
                echo "$cb $ca"
            done | paired)
        fi
        printf '%-10s %12s %10s %10s %11s %12s %14s\n' "$srv" "$rps" "$p50" "$p99" "$per" "$vs" "$cvs"
    done
fi
