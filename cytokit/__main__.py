"""``python -m cytokit``: the ``cytokit`` command where its entry point is not on PATH."""

import sys

from cytokit.cli import main

sys.exit(main())
