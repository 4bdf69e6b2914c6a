"""Plugin entry point (being written)."""
import mmtk


@mmtk.hookimpl
def mmtk_register_components(register):
    pass
