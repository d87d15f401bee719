#!/usr/bin/env bash
# Installs the Debian packages mtlc needs to build, test and run, when missing.
# Safe to run again: packages already present are not reinstalled.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  flex bison
  llvm-19-dev clang-19 llvm-19-tools libclang-rt-19-dev   # the last: libFuzzer for tests/fuzz
  libopenblas-dev libcmocka-dev libcjson-dev
  python3   # the end-to-end tests check JSON output with it (standard library only)
  valgrind  # scripts/valgrind.sh, the e2e.valgrind test
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -q
"${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
