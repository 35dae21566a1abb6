#!/usr/bin/env bash
# One-command set-up on Debian/Ubuntu: the system packages jaxnet's tests and quickstart use (when
# missing), then jaxnet itself with the exact package set verified together (constraints.txt).
#   ./setup.sh            everything: Fashion-MNIST, WordNet, libjpeg headers, Chromium, jaxnet[test]
# Other systems: docs/setup.md lists the same steps.
set -euo pipefail
cd "$(dirname "$0")"
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1

packages=()
[ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || packages+=(dataset-fashion-mnist)
[ -f /usr/include/jpeglib.h ] || packages+=(libjpeg62-turbo-dev)  # builds jaxnet.data._jpegcrop
[ -f /usr/share/wordnet/data.noun ] || packages+=(wordnet-base)  # hierarchy-aware metrics
command -v chromium >/dev/null || packages+=(chromium)  # the report page's browser test
command -v chromedriver >/dev/null || packages+=(chromium-driver)
if [ ${#packages[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing ${packages[*]}"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${packages[@]}" >/dev/null
fi
python3 -m pip install -q -e ".[test]" -c constraints.txt
echo "jaxnet is installed: python3 -m pytest runs the tests (docs/setup.md)"
