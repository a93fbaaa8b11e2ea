#!/usr/bin/env bash
# End-to-end test of the Residency desktop app.
#
#   tests/e2e/run.sh
#
# 1. installs tauri-driver into a cache folder if it is missing (~1 minute),
# 2. builds the UI (npm) and the app (cargo, debug),
# 3. starts Xvfb on a free display and tauri-driver (WebKitWebDriver behind it),
# 4. runs app.test.mjs (selenium-webdriver), which drives the real app window
#    (adds the demo folder, edits the persona, restarts the app on the same
#    data folder) and saves screenshots of every screen in both themes,
# 5. always stops everything it started, even on failure or Ctrl-C.
# The exit code is the test's; the last line is "N passed, N failed".
#
# Environment:
#   E2E_SCREENSHOTS  where screenshots go (default tests/e2e/screenshots)
#   E2E_TOOLS        where tauri-driver is installed (default ~/.cache/residency/tools)
#   E2E_PORT         tauri-driver port (default 4444; the next free one if taken)
#   E2E_SKIP_BUILD=1 reuse the existing ui/dist and target/debug/residency-app
# System packages: scripts/system-deps.sh. Model fixture: scripts/fixtures.py smollm2.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E2E="$ROOT/tests/e2e"
TOOLS=${E2E_TOOLS:-$HOME/.cache/residency/tools}
export E2E_SCREENSHOTS=${E2E_SCREENSHOTS:-$E2E/screenshots}
WORK=$(mktemp -d -t residency-e2e.XXXXXX)
XVFB_PID=""
DRIVER_PID=""
NODE_PID=""
RESULT_LINE="0 passed, 1 failed"

log() { printf '[e2e %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

finish() {
  local code=$?
  trap - EXIT INT TERM
  if [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; then
    # Interrupted mid-test: give the test a moment to delete its session.
    kill -TERM "$NODE_PID" 2>/dev/null
    sleep 1
    kill -KILL "$NODE_PID" 2>/dev/null
  fi
  if [[ -n $DRIVER_PID ]]; then
    # tauri-driver runs in its own process group with WebKitWebDriver and the app.
    kill -TERM -- "-$DRIVER_PID" 2>/dev/null
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- "-$DRIVER_PID" 2>/dev/null || break; sleep 0.3; done
    kill -KILL -- "-$DRIVER_PID" 2>/dev/null
  fi
  if [[ -n $XVFB_PID ]]; then
    kill -TERM "$XVFB_PID" 2>/dev/null
    wait "$XVFB_PID" 2>/dev/null
  fi
  if [[ $code -ne 0 && -s $WORK/driver.log ]]; then
    log "tauri-driver log (last lines):"
    tail -n 20 "$WORK/driver.log"
  fi
  rm -rf "$WORK"
  echo "$RESULT_LINE"
  exit "$code"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() { log "ERROR: $*"; exit 1; }

# --- tools ------------------------------------------------------------------
for tool in Xvfb node npm cargo; do
  command -v "$tool" >/dev/null || fail "$tool is missing (system packages: scripts/system-deps.sh)"
done
NATIVE_DRIVER=${WEBKIT_WEBDRIVER:-/usr/bin/WebKitWebDriver}
[[ -x $NATIVE_DRIVER ]] || fail "$NATIVE_DRIVER is missing: run scripts/system-deps.sh (package webkit2gtk-driver)"

TAURI_DRIVER=$(command -v tauri-driver || true)
if [[ -z $TAURI_DRIVER ]]; then
  TAURI_DRIVER=$TOOLS/bin/tauri-driver
  if [[ ! -x $TAURI_DRIVER ]]; then
    log "installing tauri-driver into $TOOLS (about a minute)"
    cargo install tauri-driver --locked --root "$TOOLS" >"$WORK/install.log" 2>&1 \
      || { tail -n 20 "$WORK/install.log"; fail "cargo install tauri-driver failed"; }
  fi
fi
log "tauri-driver: $TAURI_DRIVER"

# --- fixture ----------------------------------------------------------------
FIXTURES=${RESIDENCY_FIXTURES:-$HOME/.cache/residency/fixtures}
if [[ ! -f $FIXTURES/SmolLM2-135M-Instruct.Q4_1.gguf ]]; then
  log "fetching the SmolLM2 fixture"
  python3 "$ROOT/scripts/fixtures.py" smollm2 || fail "could not fetch the SmolLM2 fixture"
fi

# --- build ------------------------------------------------------------------
npm_ci_if_needed() { # dir
  if [[ ! -d $1/node_modules || $1/package-lock.json -nt $1/node_modules/.package-lock.json ]]; then
    (cd "$1" && npm ci --no-audit --no-fund) || fail "npm ci failed in $1"
  fi
}
APP="${CARGO_TARGET_DIR:-$ROOT/target}/debug/residency-app"
if [[ ${E2E_SKIP_BUILD:-0} != 1 ]]; then
  t0=$SECONDS
  npm_ci_if_needed "$ROOT/ui"
  (cd "$ROOT/ui" && npm run --silent build >"$WORK/ui-build.log" 2>&1) \
    || { cat "$WORK/ui-build.log"; fail "UI build failed"; }
  log "UI built in $((SECONDS - t0)) s"
  t0=$SECONDS
  # The whole workspace with all targets: the same feature set as `cargo test
  # --workspace`, so after the test run no dependency is compiled twice.
  (cd "$ROOT" && cargo build --workspace --all-targets) || fail "app build failed"
  log "app built in $((SECONDS - t0)) s"
fi
[[ -x $APP ]] || fail "$APP is missing (build it, or unset E2E_SKIP_BUILD)"
npm_ci_if_needed "$E2E"

# --- display ----------------------------------------------------------------
# Xvfb picks a free display itself and writes its number to fd 3.
Xvfb -displayfd 3 -screen 0 1280x860x24 -nolisten tcp 3>"$WORK/display" >"$WORK/xvfb.log" 2>&1 &
XVFB_PID=$!
for _ in $(seq 50); do [[ -s $WORK/display ]] && break; sleep 0.1; done
[[ -s $WORK/display ]] || { cat "$WORK/xvfb.log"; fail "Xvfb did not start"; }
export DISPLAY=":$(tr -d '[:space:]' <"$WORK/display")"
log "Xvfb on display $DISPLAY"

# --- tauri-driver -------------------------------------------------------------
# The app (started by WebKitWebDriver under tauri-driver, inheriting this
# environment) keeps its projects in a fresh folder for this run, never in the
# person's own app-data folder; the test restarts the app on the same folder.
export RESIDENCY_DATA_DIR="$WORK/app-data"
mkdir -p "$RESIDENCY_DATA_DIR"
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=${E2E_PORT:-4444}
while ! port_free "$PORT" || ! port_free $((PORT + 1)); do
  log "port $PORT or $((PORT + 1)) is taken, trying $((PORT + 2))"
  PORT=$((PORT + 2))
  (( PORT < 4544 )) || fail "no free port pair found from 4444 to 4544"
done
# Its own session bus (WebKit wants one) and its own process group, so that
# cleanup reaches WebKitWebDriver and the app too.
setsid dbus-run-session -- "$TAURI_DRIVER" --port "$PORT" --native-port $((PORT + 1)) \
  --native-driver "$NATIVE_DRIVER" >"$WORK/driver.log" 2>&1 &
DRIVER_PID=$!
for _ in $(seq 100); do port_free "$PORT" || break; sleep 0.1; done
port_free "$PORT" && { cat "$WORK/driver.log"; fail "tauri-driver did not open port $PORT"; }
log "tauri-driver on port $PORT"

# --- test -------------------------------------------------------------------
export E2E_APP=$APP E2E_WEBDRIVER="http://127.0.0.1:$PORT" E2E_RESULT="$WORK/result"
# In the background + wait, so that a signal to this script is handled at once.
node "$E2E/app.test.mjs" &
NODE_PID=$!
wait "$NODE_PID"
code=$?
NODE_PID=""
if [[ -s $WORK/result ]]; then
  read -r p f <"$WORK/result"
  RESULT_LINE="$p passed, $f failed"
fi
exit "$code"
