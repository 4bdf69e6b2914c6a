"""mmtk plugin ``hf``: pretrained encoders through local Hugging Face checkpoints, and ``mmtk extract``."""
