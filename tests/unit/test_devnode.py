"""devnode's builders: the dev Secret, rules and chart values; the chart's real-node placement file."""

from __future__ import annotations

import base64

import yaml

from datajobs import devdata, devnode
from datajobs.localcluster.nodeconfig import TAINT, pod_placement
from datajobs.workers.rules import MaskingRules


def decoded(secret: dict) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}


def test_the_placement_file_puts_every_pod_of_the_release_on_the_real_node() -> None:
    values = yaml.safe_load(devnode.PLACEMENT_VALUES.read_text())
    placement = pod_placement()
    assert placement["tolerations"] == [{**TAINT, "operator": "Equal"}]
    for component in ("operator", "adapter", "worker"):
        assert values[component] == placement, component


def test_the_connection_secret_holds_what_the_default_workers_read() -> None:
    secret = devnode.connection_secret("postgresql://postgres@198.18.0.1:5432/datajobs_dev", "k" * 32)
    assert secret["metadata"] == {"name": "datajobs-dev-postgres", "namespace": "default"}
    assert decoded(secret) == {
        "SOURCE_DSN": "postgresql://postgres@198.18.0.1:5432/datajobs_dev",
        "DESTINATION_DSN": "postgresql://postgres@198.18.0.1:5432/datajobs_dev",
        "TARGET_DSN": "postgresql://postgres@198.18.0.1:5432/datajobs_dev",
        "INTEGRITY_SOURCE_SCHEMA": "shop",
        "MASKING_KEY": "k" * 32,
    }


def test_the_rules_configmap_is_valid_masking_rules() -> None:
    cm = devnode.rules_configmap()
    assert cm["metadata"] == {"name": "datajobs-dev-masking-rules", "namespace": "default"}
    rules = MaskingRules.model_validate(yaml.safe_load(cm["data"]["rules.yaml"]))
    assert [t.table for t in rules.tables] == ["public.customers", "orders"]


def test_chart_values_name_the_built_image_and_the_dev_keys() -> None:
    values = devnode.chart_values("localhost/datajobs/datajobs-operator:0123abcd")
    assert values["image"] == {
        "repository": "localhost/datajobs/datajobs-operator",
        "tag": "0123abcd",
        "pullPolicy": "Never",
    }
    assert values["adapter"]["apiKeys"] == {"existingSecret": devnode.KEYS_SECRET}
    assert values["worker"]["serviceAccount"] == {"namespaces": ["default"]}
    keys = devnode.keys_secret("keys: []\n")
    assert keys["metadata"] == {"name": devnode.KEYS_SECRET, "namespace": "datajobs-system"}
    assert decoded(keys) == {"keys.yaml": "keys: []\n"}


def test_the_injected_differences_are_what_the_destination_holds() -> None:
    source = devdata.source_orders()
    destination = devdata.destination_orders(source)
    assert len(source) == devdata.ORDERS
    assert set(source) - set(destination) == set(devdata.MISSING)
    assert set(destination) - set(source) == set(devdata.ORPHANED)
    changed = {i for i in source.keys() & destination.keys() if source[i] != destination[i]}
    assert changed == set(devdata.STALE) | set(devdata.INCORRECT)
    assert all(destination[i][3] < source[i][3] for i in devdata.STALE)
    assert all(destination[i][3] == source[i][3] for i in devdata.INCORRECT)


def test_a_forwarder_inside_the_namespace_may_dial_its_addresses_and_service_ips_only() -> None:
    from datajobs.localcluster.cluster import SERVICE_CIDR
    from datajobs.localcluster.netns import SERVICE_NETWORK, dialable_in_namespace

    assert SERVICE_CIDR == str(SERVICE_NETWORK)
    assert dialable_in_namespace("10.0.0.214") and dialable_in_namespace("198.18.1.2")
    assert dialable_in_namespace("127.0.0.1")
    assert not dialable_in_namespace("10.0.1.1") and not dialable_in_namespace("8.8.8.8")
    assert not dialable_in_namespace("datajobs-node")
