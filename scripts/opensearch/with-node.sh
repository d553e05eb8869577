#!/usr/bin/env bash
# Run a command with the local OpenSearch node up and RAGOPS_OPENSEARCH_URL exported (the engine tests read it);
# the node is stopped when the command ends, fails or is interrupted. The command runs as a child the script
# waits for, so SIGTERM/SIGINT reach the traps at once (bash defers traps while a foreground child runs).
set -euo pipefail
node="$(cd "$(dirname "$0")" && pwd)/node.sh"
trap '"$node" stop' EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
started=$SECONDS
RAGOPS_OPENSEARCH_URL=$("$node" start)
export RAGOPS_OPENSEARCH_URL
echo "with-node: OpenSearch ready at $RAGOPS_OPENSEARCH_URL after $((SECONDS - started))s (fetch, assembly and start)" >&2
"$@" &
command_pid=$!
trap 'kill -TERM "$command_pid" 2>/dev/null || true; wait "$command_pid" || true; exit 143' TERM
trap 'kill -INT "$command_pid" 2>/dev/null || true; wait "$command_pid" || true; exit 130' INT
wait "$command_pid"
