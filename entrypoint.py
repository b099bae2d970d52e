"""The Docker action's entry point: everything happens in the package."""

import sys

from gitops_action.cli import action_main

if __name__ == "__main__":
    sys.exit(action_main())
