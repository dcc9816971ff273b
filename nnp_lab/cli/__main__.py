"""``python -m nnp_lab.cli``: the same as the ``nnp-lab`` command."""

import sys

from nnp_lab.cli import main

sys.exit(main())
