"""rfa_toolbox.encodings.tensorflow_keras.ingest_architecture: `create_graph_from_model` is
`create_graph_from_tensorflow_model` (a Keras 3 model through foveal's Keras front-end; one node
per Keras layer, the input layer included, as in rfa_toolbox)."""

from __future__ import annotations

from typing import Any

from ... import create_graph_from_tensorflow_model
from ...graphs import EnrichedNetworkNode


def create_graph_from_model(model: Any, filter_rf: Any = None, input_res: Any = None,
                            **options: Any) -> EnrichedNetworkNode:
    """rfa_toolbox's name for create_graph_from_tensorflow_model."""
    return create_graph_from_tensorflow_model(model, filter_rf=filter_rf, input_res=input_res, **options)


__all__ = ["create_graph_from_model"]
