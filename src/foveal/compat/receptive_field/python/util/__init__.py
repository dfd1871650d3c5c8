"""The reference's `receptive_field.python.util`: its three modules, each a thin re-export of
foveal's implementation one package up (nothing is computed here)."""
