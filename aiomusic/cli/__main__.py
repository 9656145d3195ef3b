"""``python -m aiomusic.cli``: the ``aiomusic`` command."""

import sys

from . import main

sys.exit(main())
