"""`receptive_field.python.util.parse_layer_parameters`, re-exported from
`foveal.compat.receptive_field.parse_layer_parameters` (the reference's public name)."""

from ... import require

require()  # numpy and protobuf, or one line naming foveal[tensorflow]

from ...parse_layer_parameters import get_layer_params  # noqa: E402

__all__ = ["get_layer_params"]
