"""mmtk plugin: CM-ARR (cross-modal alignment, reconstruction and refinement), Sun et al. 2024."""
