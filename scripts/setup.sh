# Shared setup steps for scripts/run, scripts/test and .ci/run. Source it, then call the functions:
#
#   source scripts/setup.sh
#   portal_setup            # apt packages if missing, .venv, pip, npm + vendor, translations
#   ensure_chromium         # Debian's /usr/bin/chromium for the browser tests
#
# Every step is idempotent and skips its work when nothing changed (hash stamps), so a second run takes
# a second or two. Works as root on a fresh Debian 12; as another user it uses `sudo -n` for apt-get.
# Environment knobs: PYTHON (interpreter used to create .venv), PORTAL_SKIP_APT=1 (never call apt-get).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
PIP_STAMP="$VENV/.portal-pip-stamp"
NPM_STAMP="$ROOT/node_modules/.portal-npm-stamp"
export PIP_DISABLE_PIP_VERSION_CHECK=1
export PYTHONUNBUFFERED=1
_APT_UPDATED=0

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31m[setup] error:\033[0m %s\n' "$*" >&2; exit 1; }

_sha() { { cat "$@" 2>/dev/null || true; } | sha256sum | cut -d" " -f1; }  # missing files hash as empty

# apt_install PKG... : install Debian packages (apt-get update once per run, non-interactive).
apt_install() {
    [ "$#" -gt 0 ] || return 0
    if [ "${PORTAL_SKIP_APT:-0}" = 1 ]; then
        die "missing Debian packages: $* (PORTAL_SKIP_APT=1; install them yourself)"
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "missing Debian packages: $* (run as root, or: apt-get install $*)"
        fi
    fi
    command -v apt-get >/dev/null || die "missing packages: $* (no apt-get here; install them yourself)"
    if [ "$_APT_UPDATED" = 0 ]; then
        log "apt-get update"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        _APT_UPDATED=1
    fi
    log "apt-get install $*"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

_py_ok() {  # _py_ok INTERPRETER: true when it runs and is Python >= 3.11
    "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null
}

# The interpreter that creates .venv: $PYTHON, else Debian's /usr/bin/python3, else python3 on PATH.
pick_python() {
    local c
    for c in ${PYTHON:-} /usr/bin/python3 python3 python3.13 python3.12 python3.11; do
        if command -v "$c" >/dev/null 2>&1 && _py_ok "$(command -v "$c")"; then
            command -v "$c"
            return 0
        fi
    done
    die "Python >= 3.11 not found (Debian 12: apt-get install python3)"
}

ensure_venv() {
    if [ -x "$VENV/bin/python" ] && _py_ok "$VENV/bin/python" && "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        return 0
    fi
    local py
    py="$(pick_python)"
    [ -e "$VENV" ] && { log "removing broken $VENV"; rm -rf "$VENV"; }
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
        local minor
        minor="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        apt_install python3-venv "python$minor-venv"
    fi
    log "creating $VENV with $py"
    "$py" -m venv "$VENV" || { rm -rf "$VENV"; die "could not create $VENV"; }
}

ensure_pip_packages() {
    local want
    want="$(_sha "$ROOT/pyproject.toml" <(echo "$("$VENV/bin/python" -V 2>&1)"))"
    if [ -f "$PIP_STAMP" ] && [ "$(cat "$PIP_STAMP")" = "$want" ] \
        && "$VENV/bin/python" -c 'import portal, flask, pytest' 2>/dev/null; then
        return 0
    fi
    log "pip install -e '.[test]'"
    (cd "$ROOT" && "$VENV/bin/python" -m pip install -q -e '.[test]')
    echo "$want" >"$PIP_STAMP"
}

ensure_node() {
    if command -v node >/dev/null && command -v npm >/dev/null; then
        return 0
    fi
    # Debian's nodejs; npm is a separate package there (NodeSource's nodejs bundles it).
    if command -v node >/dev/null; then apt_install npm; else apt_install nodejs npm; fi
    command -v npm >/dev/null || die "npm still missing after installing nodejs/npm"
}

ensure_vendor() {
    local want lock="$ROOT/package-lock.json"
    want="$(_sha "$ROOT/package.json" "$lock")"
    if [ ! -f "$NPM_STAMP" ] || [ "$(cat "$NPM_STAMP")" != "$want" ]; then
        ensure_node
        if [ -f "$lock" ]; then
            log "npm ci"
            (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
        else
            log "npm install (no package-lock.json yet)"
            (cd "$ROOT" && npm install --no-audit --no-fund --loglevel=error)
        fi
        _sha "$ROOT/package.json" "$lock" >"$NPM_STAMP"
    fi
    # Copy the pinned files into static/vendor when the lock file or scripts/vendor.js changed.
    local vendor_stamp="$ROOT/static/vendor/.portal-vendor-stamp"
    want="$(_sha "$lock" "$ROOT/scripts/vendor.js")"
    if [ ! -s "$ROOT/static/vendor/htmx.min.js" ] || [ ! -f "$vendor_stamp" ] \
        || [ "$(cat "$vendor_stamp")" != "$want" ]; then
        ensure_node
        (cd "$ROOT" && npm run --silent vendor)
        echo "$want" >"$vendor_stamp"
    fi
}

compile_translations() {
    local dir="$ROOT/portal/translations"
    if compgen -G "$dir/*/LC_MESSAGES/*.po" >/dev/null; then
        local out
        out="$("$VENV/bin/pybabel" compile -d "$dir" 2>&1)" || { echo "$out" >&2; die "pybabel compile failed"; }
        # pybabel skips a whole catalog whose header is marked fuzzy (and keeps a stale .mo): say so.
        if grep -qi "skipping" <<<"$out"; then
            grep -i "skipping" <<<"$out" | sed 's/^/[setup] warning: /' >&2
        fi
    fi
}

# Fonts with Chinese glyphs: PDF evidence pages (fpdf2) and browser screenshots need them.
ensure_cjk_fonts() {
    if ! compgen -G "/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc" >/dev/null; then
        apt_install fonts-noto-cjk
    fi
}

ensure_chromium() {
    if [ ! -x /usr/bin/chromium ]; then
        apt_install chromium
    fi
}

# Everything both commands need: Python env, front-end assets, compiled translations.
portal_setup() {
    local t0=$SECONDS
    ensure_venv
    ensure_pip_packages
    ensure_vendor
    ensure_cjk_fonts
    compile_translations
    log "environment ready ($((SECONDS - t0)) s)"
}

# True when a Redis server answers PING at the given URL.
redis_answers() {
    "$VENV/bin/python" - "$1" <<'EOF' 2>/dev/null
import sys
import redis
try:
    sys.exit(0 if redis.Redis.from_url(sys.argv[1], socket_connect_timeout=1, socket_timeout=2).ping() else 1)
except Exception:
    sys.exit(1)
EOF
}

ensure_redis_server_binary() {
    command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || apt_install redis-server
}

# The test suite uses the machine's Redis on 127.0.0.1:6379 (a database index per test process) and
# starts private redis-servers of its own. When nothing answers on 6379, start a throwaway server there
# (no persistence) and set TEST_REDIS_PID; stop_test_redis ends it.
TEST_REDIS_PID=""
ensure_test_redis() {
    local url="redis://127.0.0.1:6379/0"
    ensure_redis_server_binary
    redis_answers "$url" && return 0
    local dir
    dir="$(mktemp -d)"
    log "no Redis on 127.0.0.1:6379: starting one for the tests (no persistence)"
    setsid redis-server --bind 127.0.0.1 --port 6379 --save "" --appendonly no --dir "$dir" \
        --loglevel warning >"$dir/redis.log" 2>&1 &
    TEST_REDIS_PID=$!
    for _ in $(seq 1 50); do redis_answers "$url" && return 0; sleep 0.1; done
    cat "$dir/redis.log" >&2
    die "could not start redis-server on 127.0.0.1:6379"
}

stop_test_redis() {
    if [ -n "$TEST_REDIS_PID" ]; then
        kill -TERM "$TEST_REDIS_PID" 2>/dev/null || true
        wait "$TEST_REDIS_PID" 2>/dev/null || true
        TEST_REDIS_PID=""
    fi
}

free_port() {
    "$VENV/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
