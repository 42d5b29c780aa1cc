"""``python -m oltr.report ...``: see oltr/report/cli.py."""

import sys

from .cli import main

sys.exit(main())
