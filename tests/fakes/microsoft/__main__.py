"""`python -m tests.fakes.microsoft`: serve a generated tenant until stdin closes (see launcher.py)."""

import sys

from tests.fakes.microsoft.launcher import main

sys.exit(main())
