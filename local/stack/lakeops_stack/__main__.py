import sys

from lakeops_stack.cli import main

sys.exit(main())
