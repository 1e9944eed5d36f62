#!/usr/bin/env bash
# Make sure the Debian/Ubuntu packages named on the command line are installed.
# Installs the missing ones when we may (root, or passwordless sudo); otherwise
# names them and exits 1, so `make` stops with a message a person can act on.
set -euo pipefail
missing=()
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
    echo "Missing system packages: ${missing[*]} (this is not a Debian/Ubuntu system: install their equivalents by hand)" >&2
    exit 1
fi
if [ "$(id -u)" -eq 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; else
    echo "Missing system packages: ${missing[*]}" >&2
    echo "Install them with:  sudo apt-get install -y ${missing[*]}   then run make again." >&2
    exit 1
fi
echo "Installing system packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
