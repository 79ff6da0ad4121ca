#!/usr/bin/env bash
# The one test command (README "Run the tests"; .ci/run calls exactly this).
#
# Installs what the service-backed tests need when it is missing (Debian packages,
# nothing else is fetched), starts those services, then runs formatting, lints and
# every test with the service features on. A machine that already has everything
# pays nothing for the set-up.
#
#   tools/test.sh            everything (needs root for packages, netns and Docker)
#   tools/test.sh --quick    unit and integration tests only, no services
set -euo pipefail
cd "$(dirname "$0")/.."

quick=0
[ "${1:-}" = "--quick" ] && quick=1

log() { printf '\n==> %s\n' "$*" >&2; }

need_pkgs=()
want() { # want <command> <debian package>
  command -v "$1" >/dev/null 2>&1 || need_pkgs+=("$2")
}

install_missing() {
  want nft nftables
  want ip iproute2
  want iptables iptables
  want ipset ipset
  want busybox busybox-static
  # tests/nginx_deny_service.rs starts its own nginx on loopback (field case 17).
  want nginx nginx
  # The SMTP tests start a real aiosmtpd on loopback with the machine's python3.
  if ! python3 -c 'import aiosmtpd' >/dev/null 2>&1; then
    log "installing aiosmtpd (PyPI) for the SMTP tests"
    python3 -m pip install --quiet --disable-pip-version-check aiosmtpd
  fi
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
      echo "missing packages: ${need_pkgs[*]} (run as root, or install them)" >&2
      exit 2
    fi
    log "installing ${need_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Packages must not start their system services (nginx would listen on port 80
    # of every interface): the tests start their own, on loopback, and stop them.
    local made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
      chmod +x /usr/sbin/policy-rc.d
      made_policy=1
    fi
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
    if [ $made_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
  fi
}

check_docker() {
  if ! docker info >/dev/null 2>&1; then
    echo "the Docker engine is not reachable (docker info failed); the docker tests need it" >&2
    exit 2
  fi
}

features=""
if [ $quick = 0 ]; then
  install_missing
  check_docker
  features="--features docker-tests,firewall-tests,service-tests"
fi

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy"
cargo clippy --all-targets $features -- -D warnings

log "cargo test $features"
export PALISADE_CORPUS="${PALISADE_CORPUS:-$(cd .. && pwd)/shared/corpus}"
cargo test $features -- --test-threads 2
