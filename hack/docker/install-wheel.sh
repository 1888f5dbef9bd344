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
#       Then slim it (docs/images.md has the numbers): no test suites of the dependencies,
#       only the botocore service models that S3 and its credential providers load.
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
        --no-compile --no-index --find-links "$wheels" "forecastops[$extra]"
    python -m pip --python "$prefix/bin/python" check --disable-pip-version-check
    slim "$extra" "$prefix"
}

# botocore's service models: S3 (models and backups), and what boto3's default credential
# chain may load (STS for web identity / IRSA and assumed roles, SSO, sign-in).
BOTOCORE_SERVICES="s3 sts sso sso-oidc signin"

slim() {
    extra=$1 prefix=$2
    site=$("$prefix/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
    # The dependencies' own test suites (numpy's alone is ~17 MB); nothing imports them.
    find "$site" -mindepth 2 -type d -name tests -prune -exec rm -rf {} +
    if [ -d "$site/botocore/data" ]; then
        for service in "$site"/botocore/data/*/; do
            case " $BOTOCORE_SERVICES " in
                *" $(basename "$service") "*) ;;
                *) rm -rf "$service" ;;
            esac
        done
    fi
    # Bytecode, compiled once here (after the cuts): the root file system is read-only at
    # run time, and without it every start compiles in memory (~1 s more for the server).
    "$prefix/bin/python" -m compileall -q -j 0 "$site"
}

[ $# -ge 1 ] || usage
command=$1
shift
case $command in
    build) [ $# -eq 3 ] || usage; build "$@" ;;
    install) [ $# -eq 3 ] || usage; install "$@" ;;
    *) usage ;;
esac
