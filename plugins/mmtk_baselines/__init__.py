"""mmtk plugin: baselines for incomplete multimodal learning (MMIN, AE/CRA, mean imputation)."""
