"""``python -m defects NAME [--state PATH]``: see ``defects.run``."""

import sys

from defects.run import main

sys.exit(main())
