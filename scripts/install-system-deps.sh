#!/usr/bin/env bash
# Installs Debian packages from the lists next to this script. Used by CI, the Dockerfile and
# scripts/ensure-deps.sh. Needs root (apt-get); prints what is missing otherwise.
#
#   install-system-deps.sh                  runtime-packages.txt + system-packages.txt (a dev/CI machine)
#   install-system-deps.sh --runtime        runtime-packages.txt only (the container image)
#   install-system-deps.sh --kvssink-build  kvssink-build-packages.txt (building kvssink from the SDK)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
case "${1:-}" in
  "") lists=(runtime-packages.txt system-packages.txt) ;;
  --runtime) lists=(runtime-packages.txt) ;;
  --kvssink-build) lists=(kvssink-build-packages.txt) ;;
  *)
    echo "usage: $0 [--runtime | --kvssink-build]" >&2
    exit 2
    ;;
esac
mapfile -t pkgs < <(cd "$here" && cat "${lists[@]}" | grep -vE '^\s*(#|$)')
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${missing[*]}" >&2
  echo "Install them with: sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
log="$(mktemp)"
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  rm -f "$log"
  exit 1
fi
rm -f "$log"
