"""A real local Kubernetes control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)."""

from datajobs.localcluster.binaries import Binaries, BinariesError, ensure_binaries, find_binaries
from datajobs.localcluster.cluster import ClusterError, LocalCluster

__all__ = ["Binaries", "BinariesError", "ClusterError", "LocalCluster", "ensure_binaries", "find_binaries"]
