import sys

from modelvigil.cli import main

sys.exit(main())
