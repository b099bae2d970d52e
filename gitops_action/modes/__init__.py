"""The modes that render nothing: `flux-config` and `promote`."""
