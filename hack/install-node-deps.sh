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

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(containerd runc containernetworking-plugins iptables iproute2 conntrack)

log() { echo "[node-deps] $*"; }

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
# policy-rc.d 101: do not start the packaged containerd service during install.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 755 "$policy"
    made_policy=1
fi
trap '[[ $made_policy -eq 1 ]] && as_root rm -f "$policy"' EXIT
as_root apt-get install -y -qq --no-install-recommends "${missing[@]}"
# Belt and braces (with systemd, policy-rc.d is not always honoured): the packaged service
# is stopped right after its install; devenv/node.py runs a containerd of its own.
if [[ " ${missing[*]} " == *" containerd "* ]]; then
    as_root service containerd stop >/dev/null 2>&1 || true
fi
log "installed: ${missing[*]}"
