"""mmtk plugin: baselines (in progress)."""
