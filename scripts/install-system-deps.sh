#!/usr/bin/env bash
# Debian packages the C++ library and app need (docs/cpp.md); installs only the missing ones.
set -euo pipefail
need=()
for pkg in cmake g++ libopencv-dev nlohmann-json3-dev libssl-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
((${#need[@]})) || exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing Debian packages for the C++ app: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
