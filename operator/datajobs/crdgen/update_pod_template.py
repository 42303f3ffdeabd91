"""Regenerate the stored PodTemplateSpec schema from Kubernetes' published OpenAPI v3 document."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from datajobs.crdgen.podtemplate import KUBERNETES_VERSION, dumps, extract

log = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the stored PodTemplateSpec schema.")
    parser.add_argument(
        "--openapi",
        type=Path,
        required=True,
        help=f"Kubernetes {KUBERNETES_VERSION} api/openapi-spec/v3/api__v1_openapi.json",
    )
    parser.add_argument("--out", type=Path, required=True, help="the JSON file to write")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    schema = extract(json.loads(args.openapi.read_text("utf-8")))
    args.out.write_text(dumps(schema), "utf-8")
    log.info("wrote %s (%d bytes)", args.out, args.out.stat().st_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
