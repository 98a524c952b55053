"""``python -m vinet_utils.report [--check]``: see :func:`vinet_utils.report.main`."""

import sys

from vinet_utils.report import main

sys.exit(main())
