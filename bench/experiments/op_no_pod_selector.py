"""The operator as before issue 12: its pod watch asks the API server for every pod (no label selector);
kopf filters on the client side. For `python -m bench.foreign_pods`, which runs it as the "before" row."""

import sys

from kopf._cogs.configs import arrays

arrays.SelectorMapping.__setitem__ = lambda self, key, value: None  # type: ignore[method-assign,assignment]
from datajobs.cli import main  # noqa: E402

sys.exit(main())
