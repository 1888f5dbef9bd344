# Shared by hack/install-*.sh: install the Debian packages that are missing, and only those.
#
#   source "$(dirname "$0")/lib/apt.sh"
#   mapfile -t missing < <(missing_packages pkg...)
#   install_packages "${missing[@]}"
#
# `apt-get update` runs once, and only when something is missing. Services a package would
# start are blocked during the install (policy-rc.d 101, removed afterwards): the tests and
# devenv start their own servers, bound to loopback or to a bridge of their own.

export DEBIAN_FRONTEND=noninteractive
_POLICY=/usr/sbin/policy-rc.d
_apt_updated=0

is_installed() {
    # dpkg -s succeeds for removed-but-configured packages too; check the real status.
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

as_root() {
    if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi
}

missing_packages() {
    local pkg
    for pkg in "$@"; do
        is_installed "$pkg" || echo "$pkg"
    done
}

apt_update_once() {
    if [[ $_apt_updated -eq 0 ]]; then
        log "apt-get update"
        as_root apt-get update -qq
        _apt_updated=1
    fi
}

block_service_starts() {
    # Only installed when no policy exists, so a machine's own policy is never replaced.
    if [[ ! -e $_POLICY ]]; then
        printf '#!/bin/sh\nexit 101\n' | as_root tee "$_POLICY" >/dev/null
        as_root chmod 755 "$_POLICY"
        trap 'as_root rm -f "$_POLICY"' EXIT
    fi
}

install_packages() {
    [[ $# -gt 0 ]] || return 0
    apt_update_once
    log "installing: $*"
    block_service_starts
    as_root apt-get install -y -qq --no-install-recommends "$@"
    log "installed: $*"
}
