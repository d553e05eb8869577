#!/usr/bin/env bash
# A single-node OpenSearch 2.19 with the k-NN plugin on 127.0.0.1, for tests and local runs of the store.
#
#   node.sh start   fetch (Maven, pinned in pom.xml, checked against artifacts.sha256), assemble once, start,
#                   wait for green; prints the node's URL
#   node.sh stop    stop the node this script started (SIGTERM, then SIGKILL after 60 s)
#   node.sh url     the node's URL
#
# The node is the minimal distribution Maven Central serves (org.opensearch.distribution.integ-test-zip, see
# OpenSearch's distribution/archives/integ-test-zip/build.gradle: no bundled JDK, no security plugin), plus
# lang-painless (k-NN's descriptor says extended.plugins=lang-painless; the minimal distribution lacks it, so it
# is assembled from the module's jars with a descriptor and the security policy of
# modules/lang-painless/src/main/plugin-metadata) and the k-NN plugin zip. That zip carries no faiss/nmslib
# native libraries (k-NN issue #2643): only the Lucene engine indexes on this node.
#
# It runs on JDK 17 (2.19 installs a SecurityManager, which JDK 24 and later refuse), as a non-root user (the
# node refuses root: as root the script creates the system user `opensearch` and keeps the node under /var/lib),
# with a 512 MiB heap, single-node discovery, HTTP and transport on loopback only.
#
# Environment: RAGOPS_OPENSEARCH_HOME (node files), RAGOPS_OPENSEARCH_PORT (9200), OPENSEARCH_JAVA_HOME (JDK 17;
# else JAVA_HOME_17_X64 as GitHub runners set it, else Debian's),
# RAGOPS_OPENSEARCH_HEAP (512m), RAGOPS_OPENSEARCH_START_TIMEOUT (seconds, 180).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
version=$(sed -n 's:.*<opensearch.version>\(.*\)</opensearch.version>.*:\1:p' "$here/pom.xml")
port=${RAGOPS_OPENSEARCH_PORT:-9200}
url="http://127.0.0.1:$port"
heap=${RAGOPS_OPENSEARCH_HEAP:-512m}
timeout=${RAGOPS_OPENSEARCH_START_TIMEOUT:-180}
java_home=${OPENSEARCH_JAVA_HOME:-${JAVA_HOME_17_X64:-/usr/lib/jvm/java-17-openjdk-amd64}}
if [[ $(id -u) == 0 ]]; then
    run_user=opensearch
    home=${RAGOPS_OPENSEARCH_HOME:-/var/lib/ragops-opensearch}
else
    run_user=$(id -un)
    home=${RAGOPS_OPENSEARCH_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/ragops-opensearch}
fi
artifacts="$home/artifacts"
node="$home/opensearch-$version"
pid_file="$home/opensearch.pid"

log() { echo "opensearch-node: $*" >&2; }

as_node_user() {
    if [[ $(id -u) == 0 ]]; then runuser -u "$run_user" -- "$@"; else "$@"; fi
}

fetch() {
    if (cd "$artifacts" 2>/dev/null && sha256sum --quiet -c "$here/artifacts.sha256" 2>/dev/null); then
        return
    fi
    log "fetching OpenSearch $version and its plugins from Maven Central"
    mkdir -p "$artifacts"
    mvn -B -q --strict-checksums -f "$here/pom.xml" dependency:copy-dependencies \
        -DexcludeTransitive=true -DoutputDirectory="$artifacts" -Dstyle.color=never >&2  # stdout is the URL
    (cd "$artifacts" && sha256sum --quiet -c "$here/artifacts.sha256")
}

assemble() {
    [[ -f "$node/.assembled" ]] && return
    log "assembling the node in $node"
    rm -rf "$node"
    local work
    work=$(mktemp -d "$home/.assemble-XXXXXX")
    unzip -q "$artifacts/opensearch-$version.zip" -d "$work"
    local dist="$work/opensearch-$version"
    local painless="$dist/modules/lang-painless"
    mkdir -p "$painless"
    cp "$artifacts"/lang-painless-*.jar "$artifacts"/opensearch-scripting-painless-spi-*.jar \
        "$artifacts"/antlr4-runtime-*.jar "$artifacts"/asm-*.jar "$painless/"
    cat >"$painless/plugin-descriptor.properties" <<EOF
description=An easy, safe and fast scripting language for OpenSearch
version=$version
name=lang-painless
classname=org.opensearch.painless.PainlessPlugin
java.version=11
opensearch.version=$version
extended.plugins=
has.native.controller=false
EOF
    cat >"$painless/plugin-security.policy" <<'EOF'
grant {
  // needed to generate runtime classes
  permission java.lang.RuntimePermission "createClassLoader";
  // needed to find the classloader to load whitelisted classes from
  permission java.lang.RuntimePermission "getClassLoader";
};
EOF
    OPENSEARCH_JAVA_HOME="$java_home" "$dist/bin/opensearch-plugin" install --batch \
        "file://$artifacts/opensearch-knn-$version.0.zip" >"$work/plugin-install.log" 2>&1 \
        || { cat "$work/plugin-install.log" >&2; exit 1; }
    touch "$dist/.assembled"
    mv "$dist" "$node"
    rm -rf "$work"
}

running_pid() {
    [[ -f "$pid_file" ]] || return 1
    local pid
    pid=$(cat "$pid_file")
    kill -0 "$pid" 2>/dev/null && echo "$pid"
}

start() {
    if pid=$(running_pid); then
        log "already running (pid $pid) at $url"
        echo "$url"
        return
    fi
    if curl -s -o /dev/null "$url"; then
        log "port $port is already taken by another process: set RAGOPS_OPENSEARCH_PORT"
        exit 1
    fi
    [[ -x "$java_home/bin/java" ]] || { log "no JDK 17 at $java_home: set OPENSEARCH_JAVA_HOME"; exit 1; }
    if [[ $(id -u) == 0 ]] && ! id "$run_user" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$run_user"
    fi
    mkdir -p "$home"
    fetch
    assemble
    rm -rf "$home/data" "$home/logs"  # every start is a fresh, empty cluster
    mkdir -p "$home/data" "$home/logs"
    [[ $(id -u) == 0 ]] && chown -R "$run_user" "$node" "$home/data" "$home/logs" && chown "$run_user" "$home"
    local started=$SECONDS
    as_node_user env OPENSEARCH_JAVA_HOME="$java_home" OPENSEARCH_JAVA_OPTS="-Xms$heap -Xmx$heap" \
        OPENSEARCH_PATH_CONF="$node/config" "$node/bin/opensearch" -d -p "$pid_file" \
        -Ecluster.name=ragops-local -Enode.name=ragops-local -Ediscovery.type=single-node \
        -Enetwork.host=127.0.0.1 -Ehttp.port="$port" -Etransport.port=$((port + 100)) \
        -Epath.data="$home/data" -Epath.logs="$home/logs" >"$home/logs/console.log" 2>&1
    until curl -sf -o /dev/null "$url/_cluster/health?wait_for_status=green&timeout=5s"; do
        # The daemon writes its pid file once it has bootstrapped: no file yet means still starting.
        if { [[ -f "$pid_file" ]] && ! running_pid >/dev/null; } || { [[ ! -f "$pid_file" ]] && ((SECONDS - started > 90)); }; then
            log "the node exited while starting; its log:"
            tail -40 "$home/logs/console.log" "$home/logs/ragops-local.log" >&2 || true
            exit 1
        fi
        if ((SECONDS - started > timeout)); then
            log "not green after ${timeout}s; stopping it"
            stop
            exit 1
        fi
        sleep 1
    done
    log "green at $url after $((SECONDS - started))s (pid $(cat "$pid_file"))"
    echo "$url"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        rm -f "$pid_file"
        return
    fi
    kill -TERM "$pid"
    for _ in $(seq 60); do
        kill -0 "$pid" 2>/dev/null || { rm -f "$pid_file"; log "stopped (pid $pid)"; return; }
        sleep 1
    done
    log "pid $pid did not stop within 60s: killing it"
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$pid_file"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "$url" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
