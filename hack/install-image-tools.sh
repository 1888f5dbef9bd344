#!/usr/bin/env bash
# Install the Debian packages `make images` needs: podman and buildah (build and run the
# images), runc (crun fails with this machine class's hybrid cgroups), mmdebstrap (makes
# the local stand-in for python:3.11-slim-bookworm when no registry is reachable).
#
# Idempotent and fast when everything is present: nothing is fetched unless a package is
# missing. Installing them switches iptables to the nft backend.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(podman buildah runc mmdebstrap uidmap)

log() { echo "[image-tools] $*"; }

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    is_installed "$pkg" || missing+=("$pkg")
done

if [[ ${#missing[@]} -eq 0 ]]; then
    log "all present: ${PACKAGES[*]}"
    exit 0
fi

log "apt-get update"
as_root apt-get update -qq
log "installing: ${missing[*]}"
as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
log "installed: ${missing[*]}"
