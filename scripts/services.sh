#!/usr/bin/env bash
# Install and start the system services that integration tests talk to (Redis, …).
#
# `make test` calls this before pytest. It is the one place that knows about Debian packages and
# daemons; the tests only connect to the services it started. CI runs the integration tests
# too, so a service that cannot be started here makes `make test` fail rather than skip.
#
# Some tests need only a program, not a running daemon: the Redis cache tests start their own
# throw-away `redis-server` on a free loopback port, so redis-server is in PACKAGES but not in
# SERVICES.
#
# How to add a service (for the issues that need one):
#
#   1. add its Debian package(s) to PACKAGES, e.g.  PACKAGES+=(redis-server)
#   2. add a start_<name> function that starts it in the background if it is not already
#      answering, and waits until it does (bounded), e.g.
#
#        start_redis() {
#            redis-cli ping >/dev/null 2>&1 && return 0
#            redis-server --daemonize yes --port 6379 --save "" --appendonly no
#            for _ in $(seq 50); do redis-cli ping >/dev/null 2>&1 && return 0; sleep 0.1; done
#            echo "services: redis did not start" >&2; return 1
#        }
#
#   3. add its name to SERVICES.
#
# Packages are installed with `apt-get update && apt-get install -y …` only when one of them is
# missing, so the common run is a no-op. Set MARU_SKIP_SERVICES=1 to skip this script entirely.
set -euo pipefail

PACKAGES=()   # Debian packages the services need
SERVICES=()   # names n with a start_n function below

# maru.cache.RedisCache: tests/cache start their own redis-server (see tests/cache/conftest.py).
PACKAGES+=(redis-server)

# maru trace ui: tests/tracing/test_browser.py drives Debian's chromium with Playwright (the Python
# package brings its driver; browsers are never downloaded).
PACKAGES+=(chromium)

# PostgreSQL: tests start a private throw-away cluster (initdb + pg_ctl on a free loopback port, see
# tests/conftest.py) to prove the read-only SQL path, chat history and the record manager on it.
PACKAGES+=(postgresql)

# maru.launch.slurm: tests/launch/test_slurm_cluster.py submits jobs to a single-node Slurm cluster
# on this host; scripts/slurm.sh writes its configuration and starts munged, slurmctld and slurmd.
PACKAGES+=(slurm-wlm munge)
SERVICES+=(slurm)
start_slurm() {
    bash "$(dirname "${BASH_SOURCE[0]}")/slurm.sh"
}

if [ "${MARU_SKIP_SERVICES:-0}" = "1" ] || [ $((${#PACKAGES[@]} + ${#SERVICES[@]})) -eq 0 ]; then
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "services: installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

for service in "${SERVICES[@]}"; do
    "start_$service"
done
exit 0
