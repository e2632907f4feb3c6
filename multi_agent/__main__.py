"""``python -m multi_agent ...`` is the same as the ``multi-agent`` command."""

import sys

from .cli import main

sys.exit(main())
