#!/usr/bin/env bash
# The README's two commands:
#   tools/setup.sh demo   install what is missing, build, run the demo
#   tools/setup.sh test   install what is missing, build, run every test
# Run as root on Debian 12. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-demo}
case "$what" in
  demo) bash tools/install-deps.sh build ;;
  test) bash tools/install-deps.sh test ;;
  *) echo "usage: $0 demo|test" >&2; exit 2 ;;
esac
# The test build must include the fuzz target (-Dfuzz=enabled fails loudly if
# it cannot); the demo build does without it.
fuzz=$([ "$what" = test ] && echo enabled || echo auto)
if [ -f build/build.ninja ]; then
  meson setup --reconfigure build -Dwerror=true -Dfuzz=$fuzz >/dev/null
else
  meson setup build -Dwerror=true -Dfuzz=$fuzz
fi
ninja -C build
case "$what" in
  demo) exec bash tools/demo.sh "${2:-vxlan}" ;;
  test) exec bash tools/run-tests.sh ;;
esac
