"""mmtk plugin: datasets (in progress)."""
