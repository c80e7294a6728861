#!/usr/bin/env bash
# Where W1's dispatch time goes, hop by hop: runs `drover bench remote
# --workload W1`, records 2 s of its sendmsg/recvmsg syscalls with perf
# tracepoints (root; the tracing adds a few microseconds per event), and
# prints the medians of: the producer's sendmsg of a submit -> the node's
# read of it, the node's read -> its sendmsg of the task frame, and that ->
# a runtime's read. Usage: bench/trace_w1_hops.sh [repo dir] (default: here).
set -euo pipefail
repo="${1:-$(cd "$(dirname "$0")/.." && pwd)}"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$repo/build/bin/drover" bench remote --workload W1 --json > "$out/bench.json" &
bench=$!
sleep 4
node=$(pgrep -f "drover serve" | head -1)
runtimes=$(pgrep -f "drover runtime" | tr '\n' ',')
perf record -a -e syscalls:sys_enter_sendmsg,syscalls:sys_exit_recvmsg -o "$out/perf.data" -- sleep 2 > /dev/null 2>&1
perf script -i "$out/perf.data" -F pid,tid,time,event,trace 2> /dev/null > "$out/events.txt"
wait "$bench"
python3 - "$bench" "$node" "$runtimes" "$out/events.txt" <<'PY'
import re, sys
producer, node = int(sys.argv[1]), int(sys.argv[2])
runtimes = {int(x) for x in sys.argv[3].split(',') if x}
events = []
for line in open(sys.argv[4]):
    m = re.match(r'\s*(\d+)/(\d+)\s+([\d.]+):\s+syscalls:(\S+): (.*)', line)
    if m:
        events.append((float(m[3]), int(m[1]), m[4], m[5]))
events.sort()
hops = []
for k, (t, pid, event, _) in enumerate(events):
    if pid != producer or event != 'sys_enter_sendmsg':
        continue
    read = sent = taken = None
    for tj, pj, ej, rj in events[k + 1:]:
        if tj > t + 0.002:
            break
        if read is None and pj == node and ej == 'sys_exit_recvmsg' and not rj.startswith('0xffff'):
            read = tj
        elif read is not None and sent is None and pj == node and ej == 'sys_enter_sendmsg':
            sent = tj
        elif sent is not None and pj in runtimes and ej == 'sys_exit_recvmsg' and not rj.startswith('0xffff'):
            taken = tj
            break
    if taken:
        hops.append(((read - t) * 1e6, (sent - read) * 1e6, (taken - sent) * 1e6))
def median(i):
    v = sorted(h[i] for h in hops)
    return v[len(v) // 2] if v else float('nan')
print('tasks %d: producer -> node read %.1f us, node read -> task frame sent %.1f us, -> runtime read %.1f us (medians)'
      % (len(hops), median(0), median(1), median(2)))
PY
cat "$out/bench.json"
