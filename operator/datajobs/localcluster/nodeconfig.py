"""Builders for the real node's configuration files: containerd, CNI, kubelet, kube-proxy (pure, no I/O)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datajobs.localcluster.netns import NODE_IP, POD_GATEWAY, POD_SUBNET

NODE_NAME = "datajobs-node"
NODE_LABEL = "datajobs.io/node"
NODE_LABEL_VALUE = "real"
TAINT = {"key": NODE_LABEL, "value": NODE_LABEL_VALUE, "effect": "NoSchedule"}
"""Pods opt in to the real node (nodeSelector + toleration); everything else stays on the kwok nodes."""
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
KUBELET_ROOT = "/run/kubelet"
"""On the node's private /run: its socket paths stay under the 108-byte limit wherever the workdir is."""
"""Inside the node's private /run: the host never sees it; `ctr` reaches it through nsenter."""
KUBELET_PORT = 10250


def pod_placement() -> dict[str, Any]:
    """The nodeSelector and toleration a pod spec needs to run on the real node."""
    return {
        "nodeSelector": {NODE_LABEL: NODE_LABEL_VALUE},
        "tolerations": [
            {"key": NODE_LABEL, "operator": "Equal", "value": NODE_LABEL_VALUE, "effect": "NoSchedule"}
        ],
    }


def containerd_config(root: Path, cni_conf_dir: Path, sandbox_image: str) -> str:
    """containerd 1.6 config (version 2 TOML): state on the private /run, CRI with the local pause image."""
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return "\n".join(
        [
            "version = 2",
            f'root = "{root}"',
            'state = "/run/containerd/state"',
            'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",'
            ' "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",'
            ' "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
            "[grpc]",
            f'  address = "{CONTAINERD_SOCKET}"',
            f"[{cri}]",
            f'  sandbox_image = "{sandbox_image}"',
            # root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj, so only raise it.
            "  restrict_oom_score_adj = true",
            "  enable_cdi = false",
            f"[{cri}.containerd]",
            '  snapshotter = "overlayfs"',
            '  default_runtime_name = "runc"',
            f"[{cri}.containerd.runtimes.runc]",
            '  runtime_type = "io.containerd.runc.v2"',
            f"[{cri}.cni]",
            '  bin_dir = "/usr/lib/cni"',
            f'  conf_dir = "{cni_conf_dir}"',
            "",
        ]
    )


def cni_conflist(ipam_dir: Path) -> str:
    """A bridge network for pods, gatewayed by the node's namespace (which has no route out)."""
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "datajobs",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "dj-cni0",
                    "isGateway": True,
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": POD_SUBNET, "gateway": POD_GATEWAY}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(ipam_dir),
                    },
                },
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        },
        indent=2,
    )


def kubelet_config(
    *, ca_file: Path, pod_logs_dir: Path, resolv_conf: Path, cgroup_root: str, max_pods: int = 50
) -> dict[str, Any]:
    """KubeletConfiguration measured to work here (cgroup v1 hybrid, cgroupfs, no systemd)."""
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": cgroup_root,
        "containerRuntimeEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "imageServiceEndpoint": f"unix://{CONTAINERD_SOCKET}",
        "address": NODE_IP,
        "port": KUBELET_PORT,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "podLogsDir": str(pod_logs_dir),
        "resolvConf": str(resolv_conf),
        "failSwapOn": False,
        "maxPods": max_pods,
        "serializeImagePulls": False,
        "evictionHard": {"nodefs.available": "1%", "imagefs.available": "1%", "memory.available": "100Mi"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "registerWithTaints": [TAINT],
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "localStorageCapacityIsolation": True,
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    """iptables mode inside the node's namespace; touches no host-wide sysctl (conntrack sizes off)."""
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": NODE_NAME,
        "bindAddress": NODE_IP,
        "clusterCIDR": POD_SUBNET,
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "nodePortAddresses": [f"{NODE_IP}/32"],
        "iptables": {"localhostNodePorts": False},
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def api_endpoint_slice(port: int) -> dict[str, Any]:
    """The `kubernetes` Service's endpoints: the API server as pods reach it, through the node's forwarder."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "kubernetes",
            "namespace": "default",
            "labels": {
                "kubernetes.io/service-name": "kubernetes",
                "endpointslice.kubernetes.io/managed-by": "datajobs-localcluster",
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [NODE_IP], "conditions": {"ready": True}}],
        "ports": [{"name": "https", "port": port, "protocol": "TCP"}],
    }
