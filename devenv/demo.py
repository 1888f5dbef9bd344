"""`make demo`: bring up the local control plane and show what runs on it.

Grows with the project: later steps install the chart, train the sample model, apply a
ForecastModel, serve forecasts and roll out a new model version.
"""

from __future__ import annotations

import sys

from devenv.cluster import ClusterError, LocalCluster


def main() -> int:
    cluster = LocalCluster()
    try:
        cluster.up()
    except ClusterError as exc:
        print(f"demo: the local control plane did not start: {exc}", file=sys.stderr)
        return 1
    print("\n$ kubectl version")
    print(cluster.kubectl("version").stdout)
    print("$ kubectl get nodes -o wide")
    print(cluster.kubectl("get", "nodes", "-o", "wide").stdout)
    print("$ kubectl get crd")
    crds = cluster.kubectl("get", "crd")
    print(crds.stdout or "No CRDs installed yet.\n")
    print(f"Try it yourself:  export KUBECONFIG={cluster.kubeconfig}")
    print("Stop it with:     make cluster-down")
    return 0


if __name__ == "__main__":
    sys.exit(main())
