#!/usr/bin/env bash
# Install the Debian packages a real kubelet node needs (devenv/node.py): containerd (the
# container runtime, run with a config of ours, never the system's service), runc (the OCI
# runtime; crun fails with this machine class's hybrid cgroups), containernetworking-plugins
# (bridge, host-local, loopback in /usr/lib/cni), iptables and iproute2 (kube-proxy, the
# bridge).
#
# Idempotent and fast when everything is present: nothing is fetched unless a package is
# missing. The Debian containerd package enables a system service; we stop and disable it
# only if this script installed it, so that nothing global keeps running.
set -euo pipefail
log() { echo "[node-deps] $*"; }
# shellcheck source=lib/apt.sh
source "$(dirname "$0")/lib/apt.sh"

PACKAGES=(containerd runc containernetworking-plugins iptables iproute2 conntrack)
mapfile -t missing < <(missing_packages "${PACKAGES[@]}")
if [[ ${#missing[@]} -eq 0 ]]; then
    log "all present: ${PACKAGES[*]}"
    exit 0
fi
install_packages "${missing[@]}"
# Belt and braces (with systemd, policy-rc.d is not always honoured): the packaged service
# is stopped right after its install; devenv/node.py runs a containerd of its own.
if [[ " ${missing[*]} " == *" containerd "* ]]; then
    as_root service containerd stop >/dev/null 2>&1 || true
fi
