"""`python -m neurodeploy ...`: the same command as the `neurodeploy` console script."""
import sys

from neurodeploy.cli import main

sys.exit(main())
