#!/usr/bin/env bash
# Install the Debian packages the tests need: PostgreSQL 15, Redis 7, Prometheus (+promtool),
# wrk, lua5.1, jq, and TimescaleDB for PostgreSQL 15 when Debian has it.
#
# Idempotent and fast when everything is present: nothing is fetched unless a package is missing.
# The tests start their own servers in temp dirs on 127.0.0.1, so no system service may be left
# running after an install (Debian starts them by default, Prometheus on every address).
set -euo pipefail

PACKAGES=(postgresql-15 postgresql-client-15 redis-server prometheus wrk lua5.1 jq)
TIMESCALE_PKG=postgresql-15-timescaledb

log() { echo "[deps] $*"; }
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

timescale_available() {
    # apt-cache needs current lists, so only ask once an update ran (or lists already exist).
    apt-cache show "$TIMESCALE_PKG" >/dev/null 2>&1
}

stop_system_services() {
    # Belt and braces: with systemd, policy-rc.d is not always honoured by deb-systemd-invoke.
    # Only called after an install, so a developer's already-running system services are left be.
    local svc
    for svc in redis-server prometheus prometheus-node-exporter; do
        if [[ -e /etc/init.d/$svc ]] || systemctl list-unit-files "$svc.service" >/dev/null 2>&1; then
            as_root service "$svc" stop >/dev/null 2>&1 || true
        fi
    done
    if command -v pg_lsclusters >/dev/null 2>&1; then
        local ver name
        while read -r ver name _; do
            as_root pg_ctlcluster "$ver" "$name" stop >/dev/null 2>&1 || true
        done < <(pg_lsclusters -h 2>/dev/null | awk '$4 == "online"')
    fi
}

main() {
    local -a missing
    mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
    if ! is_installed "$TIMESCALE_PKG"; then
        if [[ ${#missing[@]} -gt 0 ]]; then apt_update_once; fi
        if timescale_available; then
            missing+=("$TIMESCALE_PKG")
        else
            log "TimescaleDB: no $TIMESCALE_PKG in the configured Debian repositories;" \
                "the server falls back to a plain partitioned table"
        fi
    fi

    if [[ ${#missing[@]} -eq 0 ]]; then
        log "all present: ${PACKAGES[*]}"
        return 0
    fi

    install_packages "${missing[@]}"
    stop_system_services
}

main "$@"
