"""The operator with trust_env off, a no-op kopf diff-base and shallow copies of event bodies."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script: find `bench`
from bench.experiments import patches

patches.no_trust_env()
patches.no_diff_base()
patches.shallow_copies()
from datajobs.cli import main  # noqa: E402

sys.exit(main())
