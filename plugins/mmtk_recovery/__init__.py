"""mmtk plugin: generative recovery of missing modalities (DiCMoR-style flows, IMDer-style diffusion)."""
