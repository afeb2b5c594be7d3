"""Clusters to run dnacnn's jobs on: a multi-node Ray cluster and an MLflow server on this machine."""

from dnacnn.cluster.local import ClusterError, ClusterState, add_worker_node, down, up

__all__ = ["ClusterError", "ClusterState", "add_worker_node", "down", "up"]
