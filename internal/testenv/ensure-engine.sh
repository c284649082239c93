#!/usr/bin/env bash
# ensure-engine.sh: make a Docker engine reachable for the test suite.
#
#   - installs Debian's docker.io (and the packages the fixture images are made
#     from) when they are missing, running `apt-get update` once first;
#   - starts dockerd, logging to $DIFYCTL_DOCKERD_LOG, when the engine is not
#     reachable;
#   - waits for it, bounded by $DIFYCTL_ENGINE_WAIT seconds (default 60).
#
# It is idempotent: on a machine that already has everything it only checks.
set -euo pipefail

log() { printf 'ensure-engine: %s\n' "$*" >&2; }

wait_secs=${DIFYCTL_ENGINE_WAIT:-60}
dockerd_log=${DIFYCTL_DOCKERD_LOG:-/var/log/difyctl-dockerd.log}

# Debian packages the engine and the fixture images come from.
need=()
for pkg in docker.io busybox-static redis-server redis-tools tmux cron postgresql mariadb-server mariadb-client; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    log "missing packages (${need[*]}) and not root: install them with apt-get and re-run"
    exit 1
  fi
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The packages the fixture images are copied from (redis, postgresql,
  # mariadb) must not start their services on the host: a policy-rc.d (only
  # when the host has none) lets only the engine's services start.
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\ncase "$1" in docker|containerd) exit 0 ;; *) exit 101 ;; esac\n' >"$policy"
    chmod 755 "$policy"
    trap 'rm -f "$policy"' EXIT
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  if trap -p EXIT | grep -q policy; then rm -f "$policy"; trap - EXIT; fi
fi

engine_up() { timeout 5 docker version --format '{{.Server.APIVersion}}' >/dev/null 2>&1; }

if engine_up; then
  log "engine reachable ($(docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}'))"
  exit 0
fi

if [ -n "${DOCKER_HOST:-}" ] && [[ "${DOCKER_HOST}" != unix://* ]]; then
  log "DOCKER_HOST=${DOCKER_HOST} is not reachable and is not a local socket; start that engine"
  exit 1
fi

if [ "$(id -u)" != 0 ]; then
  log "engine unreachable and not root: start dockerd (sudo dockerd &) and re-run"
  exit 1
fi

if pgrep -x dockerd >/dev/null 2>&1; then
  log "dockerd is running but not answering yet; waiting"
else
  # containerd is shipped with docker.io; dockerd starts its own when none runs.
  log "starting dockerd (log: $dockerd_log)"
  mkdir -p "$(dirname "$dockerd_log")"
  nohup dockerd >>"$dockerd_log" 2>&1 </dev/null &
  disown || true
fi

for ((i = 0; i < wait_secs * 2; i++)); do
  if engine_up; then
    log "engine up after ~$((i / 2))s ($(docker version --format '{{.Server.Version}} API {{.Server.APIVersion}}'))"
    exit 0
  fi
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    log "dockerd exited; last lines of $dockerd_log:"
    tail -n 20 "$dockerd_log" >&2 || true
    exit 1
  fi
  sleep 0.5
done
log "engine did not answer within ${wait_secs}s; last lines of $dockerd_log:"
tail -n 20 "$dockerd_log" >&2 || true
exit 1
