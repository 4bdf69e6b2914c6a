"""mmtk plugin: cmarr (in progress)."""
