"""The real node: containers from the built image run, get SIGTERM, are killed at their grace, are
OOM-killed at their limit, log, reach the API server through the `kubernetes` Service — and every
address the node, its pods and the endpoints report lies inside the harness's own namespace."""

from __future__ import annotations

import threading
import time
from typing import Any

from kubernetes import client, watch

from datajobs.localcluster.netns import inside_namespace
from helpers import wait_for

PY = "/opt/datajobs/bin/python"


def pod_body(name: str, node: Any, script: str, **spec: Any) -> dict[str, Any]:
    container = {
        "name": "main",
        "image": node.image,
        "imagePullPolicy": "Never",
        "command": [PY, "-u", "-c", script],
        **spec.pop("container", {}),
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "containers": [container], **node.placement, **spec},
    }


class PodHistory:
    """Every version of one pod the API server reported, up to and including its DELETED event."""

    def __init__(self, core: client.CoreV1Api, namespace: str, name: str) -> None:
        self.versions: list[tuple[float, str, client.V1Pod]] = []
        self.done = threading.Event()
        self._stop = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(core, namespace, name), daemon=True)
        self._thread.start()

    def _run(self, core: client.CoreV1Api, namespace: str, name: str) -> None:
        for event in self._stop.stream(
            core.list_namespaced_pod, namespace, field_selector=f"metadata.name={name}", timeout_seconds=120
        ):
            self.versions.append((time.monotonic(), event["type"], event["object"]))
            if event["type"] == "DELETED":
                self.done.set()
                self._stop.stop()

    def terminated(self) -> client.V1ContainerStateTerminated | None:
        for _, _, pod in reversed(self.versions):
            for status in (pod.status and pod.status.container_statuses) or []:
                if status.state and status.state.terminated:
                    return status.state.terminated
        return None


def run_pod(core: client.CoreV1Api, namespace: str, body: dict[str, Any]) -> PodHistory:
    history = PodHistory(core, namespace, body["metadata"]["name"])
    core.create_namespaced_pod(namespace, body)
    return history


def wait_running(core: client.CoreV1Api, namespace: str, name: str, timeout: float = 60) -> client.V1Pod:
    def running() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if pod.status.phase == "Running" else None

    return wait_for(running, timeout=timeout, message=f"pod {name} Running")


def test_the_node_is_real_and_every_address_it_reports_is_inside_the_namespace(
    real_node, kube_api, namespace
) -> None:
    core = client.CoreV1Api(kube_api)
    node = core.read_node(real_node.name)
    assert node.status.node_info.container_runtime_version.startswith("containerd://")
    assert {t.key for t in node.spec.taints or []} == {"datajobs.io/node"}
    addresses = [a.address for a in node.status.addresses if a.type != "Hostname"]
    assert addresses and all(inside_namespace(a) for a in addresses), addresses

    run_pod(core, namespace, pod_body("addr", real_node, "import time; time.sleep(600)"))
    pod = wait_running(core, namespace, "addr")
    assert pod.spec.node_name == real_node.name
    assert [ip.ip for ip in pod.status.pod_ips] and all(inside_namespace(ip.ip) for ip in pod.status.pod_ips)
    assert inside_namespace(pod.status.host_ip)

    slices = client.DiscoveryV1Api(kube_api).list_endpoint_slice_for_all_namespaces().items
    reported = [a for s in slices for e in s.endpoints or [] for a in e.addresses]
    assert reported and all(inside_namespace(a) for a in reported), reported


def test_a_pod_reaches_the_api_server_through_the_kubernetes_service(real_node, kube_api, namespace) -> None:
    core = client.CoreV1Api(kube_api)
    script = (
        "import os, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "host, port = os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT']\n"
        "auth = {'Authorization': 'Bearer ' + open(sa + '/token').read()}\n"
        "req = urllib.request.Request(f'https://{host}:{port}/version', headers=auth)\n"
        "print('version', urllib.request.urlopen(req, context=ctx, timeout=10).status)\n"
    )
    history = run_pod(core, namespace, pod_body("api", real_node, script))
    wait_for(history.terminated, timeout=60, message="the pod finished")
    assert history.terminated().exit_code == 0, core.read_namespaced_pod_log("api", namespace)
    assert "version 200" in core.read_namespaced_pod_log("api", namespace)


def test_sigterm_reaches_the_container_and_its_termination_message_is_kept(
    real_node, kube_api, namespace, kubectl
) -> None:
    core = client.CoreV1Api(kube_api)
    script = (
        "import signal, sys, time\n"
        "def stop(*_):\n"
        "    open('/dev/termination-log', 'w').write('got SIGTERM')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('worker up', flush=True)\n"
        "time.sleep(600)\n"
    )
    history = run_pod(core, namespace, pod_body("term", real_node, script))
    wait_running(core, namespace, "term")
    wait_for(lambda: "worker up" in kubectl("-n", namespace, "logs", "term").stdout, message="kubectl logs")
    asked = time.monotonic()
    core.delete_namespaced_pod("term", namespace, grace_period_seconds=30)
    assert history.done.wait(60), "the pod was never deleted"
    gone = next(t for t, kind, _ in history.versions if kind == "DELETED")
    terminated = history.terminated()
    assert terminated is not None and terminated.exit_code == 0 and terminated.message == "got SIGTERM"
    assert gone - asked < 10, f"a prompt worker's pod took {gone - asked:.1f} s to go with a 30 s grace"


def test_a_container_that_ignores_sigterm_is_killed_at_its_grace(real_node, kube_api, namespace) -> None:
    core = client.CoreV1Api(kube_api)
    script = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)\n"
    history = run_pod(core, namespace, pod_body("stubborn", real_node, script))
    wait_running(core, namespace, "stubborn")
    asked = time.monotonic()
    core.delete_namespaced_pod("stubborn", namespace, grace_period_seconds=3)
    assert history.done.wait(60), "the pod was never deleted"
    gone = next(t for t, kind, _ in history.versions if kind == "DELETED")
    terminated = history.terminated()
    assert terminated is not None and terminated.exit_code == 137
    assert 3 <= gone - asked < 15, f"killed after {gone - asked:.1f} s with a 3 s grace"


def test_a_container_over_its_memory_limit_is_oom_killed(real_node, kube_api, namespace) -> None:
    core = client.CoreV1Api(kube_api)
    script = "blocks = []\nwhile True:\n    blocks.append(bytearray(16 << 20))\n"
    limits = {"resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "64Mi"}}}
    history = run_pod(core, namespace, pod_body("oom", real_node, script, container=limits))
    terminated = wait_for(history.terminated, timeout=60, message="the pod was OOM-killed")
    assert terminated.reason == "OOMKilled" and terminated.exit_code == 137


def test_the_image_runs_as_its_non_root_user(real_node, kube_api, namespace) -> None:
    core = client.CoreV1Api(kube_api)
    history = run_pod(core, namespace, pod_body("whoami", real_node, "import os; print('uid', os.getuid())"))
    wait_for(history.terminated, timeout=60, message="the pod finished")
    assert "uid 65532" in core.read_namespaced_pod_log("whoami", namespace)
