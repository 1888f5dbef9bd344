#!/usr/bin/env bash
# Build the local control plane's binaries from upstream Go modules, once per version.
#
#   hack/build-binaries.sh            build what is missing, print the bin directory
#
# Binaries land in $FORECASTOPS_CACHE (default ~/.cache/forecastops), never in the work
# tree. A finished binary is kept by version; a half-built one is never taken for done
# (each is written to a temp name and moved into place).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"

export GOTOOLCHAIN=local
export CGO_ENABLED=0
export GOFLAGS=-mod=mod
cache=${FORECASTOPS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/forecastops}
bin="$cache/bin"
work="$cache/build"
mkdir -p "$bin" "$work"

start=$(date +%s)
say() { printf '[build %4ss] %s\n' "$(( $(date +%s) - start ))" "$*" >&2; }

have() { # name version
  [ -x "$bin/$1" ] && [ -f "$bin/.$1.version" ] && [ "$(cat "$bin/.$1.version")" = "$2" ]
}
install_bin() { # built-file name version
  mv -f "$1" "$bin/$2"
  echo "$3" > "$bin/.$2.version"
}

# Build one command of an upstream Go module in a throwaway module that requires it.
build_go_command() { # name version module package [extra ldflags]
  local name=$1 version=$2 module=$3 package=$4 ldflags="-s -w${5:+ $5}" t0 d
  t0=$(date +%s)
  d="$work/$name-$version"; mkdir -p "$d"
  printf 'module forecastops.local/%sbuild\n\ngo 1.26\n\nrequire %s %s\n' \
    "${name//-/}" "$module" "$version" > "$d/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" > "$d/tools.go"
  (cd "$d" && go mod tidy >/dev/null 2>&1 || go mod tidy)
  (cd "$d" && go build -trimpath -ldflags "$ldflags" -o "$d/$name.new" "$package")
  install_bin "$d/$name.new" "$name" "$version"
  say "$name: built in $(( $(date +%s) - t0 ))s"
}

command -v go >/dev/null || { echo "go is not installed (need Go >= 1.26)" >&2; exit 1; }

# --- etcd -----------------------------------------------------------------------------
if ! have etcd "$ETCD_VERSION"; then
  say "etcd $ETCD_VERSION: building from go.etcd.io/etcd/server/v3"
  build_go_command etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3
fi

# --- kwok -----------------------------------------------------------------------------
if ! have kwok "$KWOK_VERSION"; then
  say "kwok $KWOK_VERSION: go install sigs.k8s.io/kwok/cmd/kwok"
  GOBIN="$work/kwok-$KWOK_VERSION" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  install_bin "$work/kwok-$KWOK_VERSION/kwok" kwok "$KWOK_VERSION"
  say "kwok: done"
fi
# kwok's "fast" stages (node initialize + lease heartbeat, pod ready/complete/delete),
# kept beside the binary so the cluster does not depend on the module cache later.
if [ ! -s "$bin/kwok-stages-$KWOK_VERSION.yaml" ]; then
  kdir=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  for f in node/fast/node-initialize node/heartbeat-with-lease/node-heartbeat-with-lease \
           pod/fast/pod-ready pod/fast/pod-complete pod/fast/pod-delete; do
    cat "$kdir/kustomize/stage/$f.yaml"; printf '\n---\n'
  done > "$bin/kwok-stages-$KWOK_VERSION.yaml.new"
  mv "$bin/kwok-stages-$KWOK_VERSION.yaml.new" "$bin/kwok-stages-$KWOK_VERSION.yaml"
fi

# --- Kubernetes -------------------------------------------------------------------------
k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy)
missing=()
for c in "${k8s_cmds[@]}"; do have "$c" "$KUBERNETES_VERSION" || missing+=("$c"); done
if [ ${#missing[@]} -gt 0 ]; then
  say "Kubernetes $KUBERNETES_VERSION: building ${missing[*]} (a cold build takes tens of minutes on 2 cores)"
  d="$work/kubernetes-$KUBERNETES_VERSION"; mkdir -p "$d/out"
  modfile=$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  {
    printf 'module forecastops.local/k8sbuild\n\ngo 1.26\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$KUBERNETES_VERSION"
    # every staging module k8s.io/<name> => ./staging/... becomes the published v0.x.y
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\t\1 => \1 '"$KUBERNETES_STAGING_VERSION"'#p' "$modfile"
    printf ')\n'
  } > "$d/go.mod"
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    for c in "${k8s_cmds[@]}"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done
    printf ')\n'
  } > "$d/tools.go"
  (cd "$d" && go mod tidy)
  minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=$KUBERNETES_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ld="$ld -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  # One command at a time, so that each build's time is reported (the later ones reuse
  # the Go build cache of the packages they share).
  for c in "${missing[@]}"; do
    t0=$(date +%s)
    (cd "$d" && go build -trimpath -ldflags "$ld" -o "$d/out/$c" "k8s.io/kubernetes/cmd/$c")
    install_bin "$d/out/$c" "$c" "$KUBERNETES_VERSION"
    say "$c: built in $(( $(date +%s) - t0 ))s"
  done
  say "Kubernetes: done"
fi

# --- CoreDNS (the real node's cluster DNS) ------------------------------------------------
if ! have coredns "$COREDNS_VERSION"; then
  say "CoreDNS $COREDNS_VERSION: building from github.com/coredns/coredns"
  build_go_command coredns "$COREDNS_VERSION" github.com/coredns/coredns github.com/coredns/coredns \
    "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
fi

# --- metrics-server (the metrics API, read from the real kubelet) ------------------------
if ! have metrics-server "$METRICS_SERVER_VERSION"; then
  say "metrics-server $METRICS_SERVER_VERSION: building from sigs.k8s.io/metrics-server"
  build_go_command metrics-server "$METRICS_SERVER_VERSION" sigs.k8s.io/metrics-server \
    sigs.k8s.io/metrics-server/cmd/metrics-server \
    "-X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
fi

# --- pause: a static sandbox binary (hack/pause) and, with buildah, a FROM-scratch image ---
if ! have pause "$PAUSE_VERSION"; then
  t0=$(date +%s)
  d="$work/pause-$PAUSE_VERSION"; mkdir -p "$d"
  cp "$here/pause/main.go" "$d/main.go"
  printf 'module forecastops.local/pause\n\ngo 1.26\n' > "$d/go.mod"
  (cd "$d" && go build -trimpath -ldflags "-s -w" -o "$d/pause.new" .)
  install_bin "$d/pause.new" pause "$PAUSE_VERSION"
  say "pause: built in $(( $(date +%s) - t0 ))s"
fi
# buildah reads our containers.conf (as devenv/images.py sets it), never /etc/containers.
if command -v buildah >/dev/null; then
  export CONTAINERS_CONF="$here/containers.conf"
  if ! buildah inspect --type image "$PAUSE_IMAGE" >/dev/null 2>&1; then
    t0=$(date +%s)
    ctr=$(buildah from scratch)
    buildah copy --chmod 0755 "$ctr" "$bin/pause" /pause >/dev/null
    buildah config --entrypoint '["/pause"]' --user 65535:65535 \
      --label io.forecastops.pause-version="$PAUSE_VERSION" "$ctr"
    buildah commit --format docker --rm "$ctr" "$PAUSE_IMAGE" >/dev/null
    say "pause image $PAUSE_IMAGE: committed in $(( $(date +%s) - t0 ))s"
  fi
else
  say "buildah not installed: pause image $PAUSE_IMAGE not made (hack/install-image-tools.sh)"
fi

# --- helm -----------------------------------------------------------------------------
if ! have helm "$HELM_VERSION"; then
  say "helm $HELM_VERSION: go install helm.sh/helm/v3/cmd/helm"
  # As helm's own Makefile does: the default Kubernetes version that `helm template` and
  # `helm lint` assume is the one of the client-go helm is built with (else v1.20).
  hmod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')
  kminor=$(sed -n 's#^[[:space:]]*k8s.io/client-go v0\.\([0-9]*\)\..*#\1#p' "$hmod" | head -1)
  hl="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  for p in helm.sh/helm/v3/pkg/lint/rules helm.sh/helm/v3/pkg/chartutil; do
    hl="$hl -X $p.k8sVersionMajor=1 -X $p.k8sVersionMinor=$kminor"
  done
  GOBIN="$work/helm-$HELM_VERSION" go install -trimpath -ldflags "$hl" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  install_bin "$work/helm-$HELM_VERSION/helm" helm "$HELM_VERSION"
  say "helm: done"
fi

# --- optional CRDs the operator detects (Gateway API HTTPRoute, VPA) -------------------
crds="$cache/crds"
if [ ! -d "$crds/gateway-api-$GATEWAY_API_VERSION" ]; then
  say "Gateway API $GATEWAY_API_VERSION CRDs"
  gdir=$(go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$crds/gateway-api-$GATEWAY_API_VERSION.new"
  cp "$gdir"/config/crd/standard/gateway.networking.k8s.io_*.yaml "$crds/gateway-api-$GATEWAY_API_VERSION.new/"
  rm -f "$crds/gateway-api-$GATEWAY_API_VERSION.new/"*vap_*.yaml
  mv "$crds/gateway-api-$GATEWAY_API_VERSION.new" "$crds/gateway-api-$GATEWAY_API_VERSION"
fi
if [ ! -s "$crds/vpa-$VPA_VERSION.yaml" ]; then
  say "VerticalPodAutoscaler $VPA_VERSION CRD"
  vdir=$(go mod download -json "k8s.io/autoscaler/vertical-pod-autoscaler@$VPA_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  mkdir -p "$crds"
  cp "$vdir/deploy/vpa-v1-crd-gen.yaml" "$crds/vpa-$VPA_VERSION.yaml.new"
  mv "$crds/vpa-$VPA_VERSION.yaml.new" "$crds/vpa-$VPA_VERSION.yaml"
fi
if [ ! -s "$crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION.yaml" ]; then
  say "Prometheus Operator $PROMETHEUS_OPERATOR_VERSION CRDs (ServiceMonitor, PrometheusRule)"
  pdir=$(go mod download -json "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  for k in servicemonitors prometheusrules; do
    cat "$pdir/example/prometheus-operator-crd/monitoring.coreos.com_$k.yaml"; printf '\n---\n'
  done > "$crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION.yaml.new"
  mv "$crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION.yaml.new" "$crds/prometheus-operator-$PROMETHEUS_OPERATOR_VERSION.yaml"
fi

say "all binaries ready in $bin"
echo "$bin"
