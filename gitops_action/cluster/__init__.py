"""The Flux side: `OCIRepository`/`Kustomization`, notifications, GitHub Deployments."""
