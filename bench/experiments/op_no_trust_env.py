"""The operator with kubernetes_asyncio's trust_env off."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `bench`
from bench.experiments import patches

patches.no_trust_env()
from datajobs.cli import main  # noqa: E402

sys.exit(main())
