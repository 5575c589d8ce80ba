"""`python -m mmray ...` runs the same command line as the `mmray` script."""

import sys

from mmray.cli import main

sys.exit(main())
