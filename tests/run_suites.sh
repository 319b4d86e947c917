#!/usr/bin/env bash
# Run test programs one after another and add up their results.
#
#   run_suites.sh [--timeout SECONDS] --suite LABEL CMD [ARG...] [--suite LABEL CMD [ARG...]]...
#
# Each entry is a label (e.g. plain/test_task, tsan/test_sched,
# qemu-aarch64/switch_selftest) followed by the command that runs it. Output
# is streamed; results are read from it:
#   Check's closing line   "NN%: Checks: N, Failures: F, Errors: E"
#   a plain line           "N passed, N failed"
#   neither                the program counts as 1 passed (exit 0) or 1 failed
# A program that exits non-zero without reporting a failure counts one more
# failed. The last line printed is always "N passed, N failed" (all
# programs); the exit status is 1 if any program exited non-zero or any case
# failed. --timeout (default 600, 0 = none) bounds each program (it and
# every process it started are stopped); the environment variable
# GR_SUITE_TIMEOUT overrides it. Interrupting the script stops the running
# program the same way.
set -u

timeout_s=600
labels=()
starts=()   # index into args of each entry's command
ends=()
args=("$@")
i=0
while (( i < ${#args[@]} )); do
    case "${args[i]}" in
        --timeout)
            timeout_s=${args[i+1]:?--timeout needs a value}
            i=$((i + 2)) ;;
        --suite)
            labels+=("${args[i+1]:?--suite needs a label}")
            i=$((i + 2))
            starts+=("$i")
            while (( i < ${#args[@]} )) && [[ ${args[i]} != --suite ]]; do i=$((i + 1)); done
            ends+=("$i")
            if (( ${ends[-1]} == ${starts[-1]} )); then
                echo "run_suites.sh: suite '${labels[-1]}' has no command" >&2
                exit 2
            fi ;;
        *)
            echo "run_suites.sh: unexpected argument '${args[i]}'" >&2
            echo "usage: run_suites.sh [--timeout SECONDS] --suite LABEL CMD [ARG...]..." >&2
            exit 2 ;;
    esac
done
timeout_s=${GR_SUITE_TIMEOUT:-$timeout_s}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/greenring-suites.XXXXXX")
log=$tmp/log flag=$tmp/timed-out fifo=$tmp/fifo
mkfifo "$fifo"

# Each program runs in a session of its own (setsid), so that a time-out or
# an interrupt can stop it together with everything it started, even
# processes that moved to another process group (Check puts every forked
# test case in its own group). Its output goes to $log and is streamed from
# there by tail.
pid="" watchdog="" streamer=""
nap() {  # nap SECONDS: sleep without a child process
    read -r -t "$1" _ <>"$fifo" || true
}
stop_session() {  # stop_session SIGNAL SID
    local f line pids=()
    for f in /proc/[0-9]*/stat; do
        read -r line 2>/dev/null <"$f" || continue
        read -r _ _ _ sid _ <<<"${line##*) }"
        [[ $sid == "$2" ]] && pids+=("${f//[^0-9]/}")
    done
    (( ${#pids[@]} == 0 )) || kill -"$1" "${pids[@]}" 2>/dev/null
    return 0
}
cleanup() {
    exec 2>/dev/null
    [[ -z $watchdog ]] || kill "$watchdog"
    [[ -z $pid ]] || stop_session KILL "$pid"
    [[ -z $streamer ]] || kill "$streamer"
    rm -rf "$tmp"
}
# Subshells (the watchdog) may briefly run these traps too: only this shell
# cleans up.
main=$BASHPID
trap '[[ $BASHPID != "$main" ]] || cleanup' EXIT
trap '[[ $BASHPID == "$main" ]] || exit 143; echo "run_suites.sh: interrupted" >&2; exit 130' INT TERM HUP PIPE

total_pass=0
total_fail=0
failed_labels=()
n=${#labels[@]}

for ((k = 0; k < n; k++)); do
    label=${labels[k]}
    cmd=("${args[@]:${starts[k]}:$((ends[k] - starts[k]))}")
    echo "==== [$((k + 1))/$n] $label"
    t0=$(date +%s)
    rm -f "$flag"
    : > "$log"
    setsid "${cmd[@]}" </dev/null >"$log" 2>&1 &
    pid=$!
    tail -s 0.1 -n +1 -f --pid="$pid" "$log" &
    streamer=$!
    if (( timeout_s > 0 )); then
        (
            trap - EXIT INT TERM HUP PIPE
            nap "$timeout_s"
            : > "$flag"
            stop_session TERM "$pid"
            nap 10
            stop_session KILL "$pid"
        ) &
        watchdog=$!
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    if [[ -n $watchdog ]]; then
        kill "$watchdog" 2>/dev/null
        wait "$watchdog" 2>/dev/null
        watchdog=""
    fi
    stop_session KILL "$pid"   # whatever the program left behind
    wait "$streamer" 2>/dev/null
    pid="" streamer=""
    timed_out=0
    [[ -e $flag ]] && timed_out=1
    secs=$(( $(date +%s) - t0 ))

    pass=0 fail=0 found=0
    while IFS= read -r line; do
        if [[ $line =~ [0-9]+%:\ Checks:\ ([0-9]+),\ Failures:\ ([0-9]+),\ Errors:\ ([0-9]+) ]]; then
            c=${BASH_REMATCH[1]} f=${BASH_REMATCH[2]} e=${BASH_REMATCH[3]}
            pass=$((pass + c - f - e)); fail=$((fail + f + e)); found=1
        elif [[ $line =~ ^[[:space:]]*([0-9]+)\ passed,\ ([0-9]+)\ failed[[:space:]]*$ ]]; then
            pass=$((pass + BASH_REMATCH[1])); fail=$((fail + BASH_REMATCH[2])); found=1
        fi
    done < "$log"

    note=""
    if (( timed_out )); then
        note=" (timed out after ${timeout_s}s)"
        (( rc != 0 )) || rc=124
    elif (( rc > 128 )); then
        note=" (killed by signal $((rc - 128)): $(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
    fi
    if (( found == 0 )); then
        if (( rc == 0 )); then pass=1; else fail=1; fi
    elif (( rc != 0 && fail == 0 )); then
        fail=1
    fi
    total_pass=$((total_pass + pass))
    total_fail=$((total_fail + fail))
    if (( rc != 0 || fail != 0 )); then
        failed_labels+=("$label")
        echo "---- FAIL $label: $pass passed, $fail failed, exit $rc$note, ${secs}s"
    else
        echo "---- ok   $label: $pass passed, $fail failed, ${secs}s"
    fi
done

if (( ${#failed_labels[@]} > 0 )); then
    echo "==== failed: ${failed_labels[*]}"
fi
echo "$total_pass passed, $total_fail failed"
(( ${#failed_labels[@]} == 0 ))
