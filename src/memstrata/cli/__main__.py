"""``python -m memstrata.cli``: the same as the ``memstrata`` command."""

import sys

from memstrata.cli import main

if __name__ == "__main__":
    sys.exit(main())
