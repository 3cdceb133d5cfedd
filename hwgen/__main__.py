"""``python -m hwgen``: the ``hwgen`` command line."""
import sys

from .cli import main

sys.exit(main())
