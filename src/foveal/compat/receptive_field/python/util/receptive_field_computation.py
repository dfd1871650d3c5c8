"""`receptive_field.python.util.receptive_field_computation`, re-exported from
`foveal.compat.receptive_field.receptive_field_computation` (the reference's public names)."""

from ... import require

require()  # numpy and protobuf, or one line naming foveal[tensorflow]

from ...receptive_field_computation import (  # noqa: E402
    ReceptiveField,
    compute_receptive_field_from_graph_def,
)

__all__ = ["ReceptiveField", "compute_receptive_field_from_graph_def"]
