#!/usr/bin/env bash
# The README's first command: install, build, then start a node (`drover serve`,
# built-in defaults, 127.0.0.1:7700) with a runtime process serving the queue
# "demo" (it upper-cases each payload), submit one task to show it works, and
# keep both running until Ctrl-C. `scripts/run.sh demo` runs the embedded demo instead.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
if [ "${1:-}" = "demo" ]; then exec build/bin/drover demo; fi

listen="${DROVER_LISTEN:-127.0.0.1:7700}"
pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; }
trap stop EXIT
trap 'exit 0' INT TERM
build/bin/drover serve --listen "$listen" & pids+=($!)
for _ in $(seq 50); do curl -sf "http://$listen/v1/queues" >/dev/null && break; sleep 0.1; done
build/bin/drover runtime --connect "$listen" --queue demo --capacity 8 --exec 'tr a-z A-Z' & pids+=($!)
sleep 0.3

id=$(curl -sf -X POST "http://$listen/v1/queues/demo/tasks" --data-binary 'hello from drover' | sed 's/.*"id":\([0-9]*\).*/\1/')
echo "submitted task $id to queue 'demo':"
curl -sf "http://$listen/v1/tasks/$id?wait_ms=5000"; echo
echo -n "result: "; curl -sf "http://$listen/v1/tasks/$id/result"; echo
cat <<HELP

The node and its runtime keep running (Ctrl-C stops both). Try:
  curl -s -X POST 'http://$listen/v1/queues/demo/tasks' --data-binary 'any payload'   # {"id":N,...}
  curl -s 'http://$listen/v1/tasks/N?wait_ms=5000'                                    # status, waits for the outcome
  curl -s 'http://$listen/v1/tasks/N/result'                                          # ANY PAYLOAD
  curl -s 'http://$listen/v1/queues'                                                  # depth and consumers
HELP
wait
