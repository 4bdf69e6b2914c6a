"""mmtk: a plugin-based PyTorch toolkit for incomplete multimodal learning."""
from .hookspecs import hookimpl, hookspec

__version__ = "0.1.0"
__all__ = ["hookimpl", "hookspec", "__version__"]
