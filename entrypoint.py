"""The Docker action's entry point: everything happens in the package."""

from gitops_action.cli import action_main, leave

if __name__ == "__main__":
    leave(action_main())
