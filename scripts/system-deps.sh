#!/usr/bin/env bash
# Installs the Debian packages needed to build the Residency desktop app
# (Tauri 2 over WebKitGTK 4.1) and to run its end-to-end tests under Xvfb.
#
# Idempotent: asks dpkg what is already installed and only runs apt-get when
# something is missing. Uses sudo only when not run as root.
#
#   scripts/system-deps.sh            # build + test packages
#   scripts/system-deps.sh --build    # build packages only
#   scripts/system-deps.sh --check    # list what is missing, install nothing (exit 1 if any)
set -euo pipefail

BUILD_PACKAGES=(
  libwebkit2gtk-4.1-dev build-essential curl wget file libxdo-dev libssl-dev
  libayatana-appindicator3-dev librsvg2-dev pkg-config
)
# Xvfb + a WebDriver for WebKitGTK for the end-to-end tests, ImageMagick for
# icons and screenshots, a session bus and the accessibility bus WebKit expects.
TEST_PACKAGES=(
  xvfb xauth imagemagick x11-apps webkit2gtk-driver dbus-x11 at-spi2-core
)

mode=all
case "${1:-}" in
  "") ;;
  --build) mode=build ;;
  --check) mode=check ;;
  -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
  *) echo "usage: $0 [--build|--check]" >&2; exit 2 ;;
esac

wanted=("${BUILD_PACKAGES[@]}")
if [[ $mode != build ]]; then wanted+=("${TEST_PACKAGES[@]}"); fi

missing=()
for pkg in "${wanted[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  if [[ $status != "install ok installed" ]]; then missing+=("$pkg"); fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "system-deps: all ${#wanted[@]} packages already installed"
  exit 0
fi

echo "system-deps: missing: ${missing[*]}"
if [[ $mode == check ]]; then exit 1; fi

if [[ $(id -u) -eq 0 ]]; then
  SUDO=()
elif command -v sudo >/dev/null; then
  SUDO=(sudo)
else
  echo "system-deps: not root and sudo is not available; install the packages above as root" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update
"${SUDO[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
echo "system-deps: installed ${#missing[@]} package(s)"
