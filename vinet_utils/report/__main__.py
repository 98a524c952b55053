"""``python -m vinet_utils.report [--check]``: see :func:`vinet_utils.report.main`."""

import sys

from . import main

sys.exit(main())
