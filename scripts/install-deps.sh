#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages.
# Idempotent and non-interactive; skips apt entirely when all are present.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache   # toolchain; Ninja + ccache keep 2-core builds fast
  libcaf-dev                                 # CAF 0.17.6: the actor runtime (actors/)
  libasio-dev                                # standalone asio: executor + awaitable for handlers
  libboost1.81-dev                           # Boost.Beast/JSON for the gateway (net/)
  libgtest-dev                               # GoogleTest, registered with CTest
  libbenchmark-dev                           # Google Benchmark for micro benchmarks
  libcli11-dev                               # CLI11: the drover command line
  libtomlplusplus-dev                        # toml++: `drover serve --config drover.toml`
  libmimalloc-dev                            # mimalloc: the drover program's allocator (apps/CMakeLists.txt)
  curl                                       # scripts/run.sh submits its demo task over HTTP
  valgrind                                   # ctest runs the WebSocket sessions under it (memory errors at shutdown)
  python3                                    # the example runtime in Python (examples/python), run by ctest
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
