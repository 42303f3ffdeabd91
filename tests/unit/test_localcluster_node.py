"""The real node's pure parts: its configuration builders, the address rule, and the forwarder's proxy."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
from pathlib import Path

import pytest

from datajobs.localcluster import janitor, nodeconfig
from datajobs.localcluster.netfwd import Forwarder, parse_rule
from datajobs.localcluster.netns import NAMESPACE_NETWORK, NODE_IP, POD_SUBNET, inside_namespace


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("127.0.0.1", True),
        ("127.9.9.9", True),
        (NODE_IP, True),
        ("198.18.1.7", True),
        ("198.19.255.1", True),
        ("10.0.0.1", False),
        ("192.168.1.1", False),
        ("172.17.0.1", False),
        ("8.8.8.8", False),
        ("node-1", False),
    ],
)
def test_only_loopback_and_the_namespace_count_as_inside(address: str, inside: bool) -> None:
    assert inside_namespace(address) is inside


def test_the_node_and_pod_networks_lie_inside_the_namespace_range() -> None:
    assert ipaddress.ip_address(NODE_IP) in NAMESPACE_NETWORK
    assert ipaddress.ip_network(POD_SUBNET).subnet_of(NAMESPACE_NETWORK)  # type: ignore[arg-type]
    conf = json.loads(nodeconfig.cni_conflist(Path("/x")))
    (rng,) = conf["plugins"][0]["ipam"]["ranges"][0]
    assert rng["subnet"] == POD_SUBNET and inside_namespace(rng["gateway"])


def test_placement_tolerates_exactly_the_taint_the_node_registers_with() -> None:
    config = nodeconfig.kubelet_config(
        ca_file=Path("/ca"), pod_logs_dir=Path("/l"), resolv_conf=Path("/r"), cgroup_root="/datajobs-1-a"
    )
    (taint,) = config["registerWithTaints"]
    placement = nodeconfig.pod_placement()
    (toleration,) = placement["tolerations"]
    assert (toleration["key"], toleration["value"], toleration["effect"]) == (
        taint["key"],
        taint["value"],
        taint["effect"],
    )
    assert placement["nodeSelector"] == {nodeconfig.NODE_LABEL: nodeconfig.NODE_LABEL_VALUE}
    assert config["cgroupRoot"] == "/datajobs-1-a" and config["address"] == NODE_IP
    assert config["authentication"]["anonymous"]["enabled"] is False


def test_containerd_keeps_its_state_private_and_cannot_lower_oom_scores() -> None:
    text = nodeconfig.containerd_config(Path("/w/root"), Path("/w/cni"), "localhost/datajobs/pause:1")
    assert 'sandbox_image = "localhost/datajobs/pause:1"' in text
    assert "restrict_oom_score_adj = true" in text
    assert f'address = "{nodeconfig.CONTAINERD_SOCKET}"' in text and nodeconfig.CONTAINERD_SOCKET.startswith(
        "/run/"
    )


def test_kube_proxy_changes_no_host_wide_conntrack_setting() -> None:
    conntrack = nodeconfig.kube_proxy_config(Path("/k"))["conntrack"]
    assert conntrack["maxPerCore"] == 0 and conntrack["tcpEstablishedTimeout"] == "0s"


def test_rules_parse_and_bad_ones_are_refused() -> None:
    assert parse_rule("198.18.0.1:6443=127.0.0.1:41000") == (("198.18.0.1", 6443), ("127.0.0.1", 41000))
    for bad in ("198.18.0.1:6443", "x=127.0.0.1:1", "a:1=b"):
        with pytest.raises(Exception, match="expected"):
            parse_rule(bad)


def test_cgroup_names_carry_their_owner_so_stale_ones_are_recognised() -> None:
    name = janitor.cgroup_name(os.getpid(), "abc123")
    assert name == f"datajobs-{os.getpid()}-abc123"
    assert name not in janitor.stale()  # we are alive


async def _proxy_roundtrip(tmp_path: Path, target: str) -> bytes:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"echo:" + await reader.read(100))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    fwd = Forwarder(Path("/proc/self/ns/net"))
    sock = tmp_path / "egress.sock"
    await fwd.connect_proxy(sock)
    try:
        reader, writer = await asyncio.open_unix_connection(str(sock))
        writer.write(f"CONNECT {target.format(port=port)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if b" 200 " in head:
            writer.write(b"hello")
            head += await reader.read(100)
        writer.close()
        return head
    finally:
        for s in [server, *fwd.servers]:
            s.close()
        fwd.ns.close()


def test_the_connect_proxy_splices_to_an_address_inside(tmp_path: Path) -> None:
    answer = asyncio.run(_proxy_roundtrip(tmp_path, "127.0.0.1:{port}"))
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"echo:hello")


@pytest.mark.parametrize("target", ["10.0.0.1:443", "192.168.0.1:80", "example.com:443"])
def test_the_connect_proxy_refuses_every_address_outside(tmp_path: Path, target: str) -> None:
    answer = asyncio.run(_proxy_roundtrip(tmp_path, target))
    assert answer.startswith(b"HTTP/1.1 502")
