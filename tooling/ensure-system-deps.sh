#!/usr/bin/env bash
# Installs the system programs the local stack needs (haproxy, the local ALB; redis-server) and the browser
# the page's tests drive (chromium) from Debian's packages when they are missing and we may install;
# otherwise says what is missing.
set -u
need=()
command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# Optional: validates docker-compose.yml offline in the tests (no Docker engine needed).
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
# The page's end-to-end tests and `make screenshots` drive Debian's chromium through Playwright.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ ${#need[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi
  if [ "$sudo" != none ]; then
    echo "installing ${need[*]} from Debian's packages" >&2
    export DEBIAN_FRONTEND=noninteractive
    ($sudo apt-get install -y -qq "${need[@]}" >/dev/null 2>&1 || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq "${need[@]}" >/dev/null 2>&1; }) \
      && exit 0
  fi
fi
echo "missing: ${need[*]} (apt-get install ${need[*]}, as root)." >&2
for program in "${need[@]}"; do
  case "$program" in
    haproxy) echo "  haproxy is the local ALB: without it \`make run\` stops before starting anything and the" \
                  "ALB and end-to-end tests are skipped or fail." >&2 ;;
    redis-server) echo "  without redis-server the local stack runs with the recommendation cache disabled (or set" \
                       "REDIS_URL to a reachable Redis) and Redis tests are skipped." >&2 ;;
    docker-compose) echo "  without docker-compose the compose file's validation test is skipped." >&2 ;;
    chromium) echo "  without chromium the page's browser tests (tests/test_web.py) are skipped and" \
                   "\`make screenshots\` fails." >&2 ;;
  esac
done
exit 0
