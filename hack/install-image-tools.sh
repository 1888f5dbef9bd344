#!/usr/bin/env bash
# Install the Debian packages `make images` needs: podman and buildah (build and run the
# images), runc (crun fails with this machine class's hybrid cgroups), mmdebstrap (makes
# the local stand-in for python:3.11-slim-bookworm when no registry is reachable).
#
# Idempotent and fast when everything is present: nothing is fetched unless a package is
# missing. Installing them switches iptables to the nft backend.
set -euo pipefail
log() { echo "[image-tools] $*"; }
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

PACKAGES=(podman buildah runc mmdebstrap uidmap)
mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
if [[ ${#missing[@]} -eq 0 ]]; then
    log "all present: ${PACKAGES[*]}"
    exit 0
fi
install_packages "${missing[@]}"
