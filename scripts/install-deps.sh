#!/usr/bin/env bash
# Installs the Debian packages Odradek needs when they are missing:
#   librocksdb-dev, libclang-dev  to build (the controller quorum links the system RocksDB;
#                                  bindgen reads its headers)
#   kcat, python3-venv            for the real-client compatibility suite (with --test)
#   iproute2                      network namespaces for the network-cut durability test
#   chromium, chromium-driver     a headless browser for the web console's tests (with --test)
set -euo pipefail
packages=(librocksdb-dev libclang-dev)
[ "${1:-}" = "--test" ] && packages+=(kcat python3-venv iproute2 chromium chromium-driver)
need=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
[ "${#need[@]}" -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
