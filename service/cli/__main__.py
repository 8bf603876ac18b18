"""`python -m service.cli …`, as the `moviegenre` script."""
import sys

from service.cli import main

sys.exit(main())
