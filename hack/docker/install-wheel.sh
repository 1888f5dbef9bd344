#!/bin/sh
# The one way forecastops is built and installed into an image. Dockerfile.operator and
# Dockerfile.server run it, and tests/integration/test_dockerfile_install.py runs it the
# same way outside a container.
#
#   install-wheel.sh build SOURCE WHEELS EXTRA
#       Build the forecastops wheel from SOURCE and download the wheels of everything
#       forecastops[EXTRA] needs into WHEELS. Only binary wheels are accepted for the
#       dependencies, so no compiler is ever needed. Set PIP_CONSTRAINT to a constraints
#       file to pin the versions.
#
#   install-wheel.sh install WHEELS EXTRA PREFIX
#       Create a virtual environment at PREFIX, without pip, and install forecastops[EXTRA]
#       from WHEELS only (no index), then check that the dependencies are consistent.
#
# Uses the python on PATH (pip 22.3 or later, for --python).
set -eu

usage() {
    echo "usage: $0 build SOURCE WHEELS EXTRA | install WHEELS EXTRA PREFIX" >&2
    exit 2
}

build() {
    source_dir=$1 wheels=$2 extra=$3
    mkdir -p "$wheels"
    python -m pip wheel --disable-pip-version-check --only-binary=:all: \
        --wheel-dir "$wheels" "$source_dir[$extra]"
}

install() {
    wheels=$1 extra=$2 prefix=$3
    python -m venv --without-pip "$prefix"
    python -m pip --python "$prefix/bin/python" install --disable-pip-version-check \
        --no-index --find-links "$wheels" "forecastops[$extra]"
    python -m pip --python "$prefix/bin/python" check --disable-pip-version-check
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
    build) [ $# -eq 3 ] || usage; build "$@" ;;
    install) [ $# -eq 3 ] || usage; install "$@" ;;
    *) usage ;;
esac
