"""`receptive_field.python.util.graph_compute_order`, re-exported from
`foveal.compat.receptive_field.graph_compute_order` (the reference's public names)."""

from ... import require

require()  # numpy and protobuf, or one line naming foveal[tensorflow]

from ...graph_compute_order import NodeInfo, get_compute_order, parse_graph_nodes  # noqa: E402

__all__ = ["NodeInfo", "get_compute_order", "parse_graph_nodes"]
