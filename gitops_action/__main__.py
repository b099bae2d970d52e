import sys

from gitops_action.cli import main

sys.exit(main())
