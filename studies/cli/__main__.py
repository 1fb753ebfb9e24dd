"""``python -m studies.cli``: the same as ``actdiag``."""

import sys

from studies.cli import main

sys.exit(main())
