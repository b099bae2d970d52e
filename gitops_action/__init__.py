"""timoni-flux-push: render the Timoni instances and bundles a commit affects, push them with flux."""
