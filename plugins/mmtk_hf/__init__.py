"""mmtk plugin: hf (in progress)."""
