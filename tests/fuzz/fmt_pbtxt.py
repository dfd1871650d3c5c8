"""TensorFlow GraphDefs in text form (`.pbtxt`): fmt_graphdef's seeds and mutations, printed with
protobuf's text format (so the text parser and its errors are fuzzed too; byte mutations then
break the syntax)."""

from __future__ import annotations

import random

import fmt_graphdef
from graphdefs import new_graph

SUFFIX = ".pbtxt"
REQUIRES = fmt_graphdef.REQUIRES
API_KWARGS = fmt_graphdef.API_KWARGS
CLI_ARGS = fmt_graphdef.CLI_ARGS


def seeds() -> list[bytes]:
    from google.protobuf import text_format

    return [text_format.MessageToString(g).encode() for g in fmt_graphdef.graphs()[:5]]


def mutate(data: bytes, rng: random.Random) -> bytes:
    from google.protobuf import text_format

    try:
        graph = text_format.Parse(data.decode("utf-8"), new_graph())
    except (text_format.ParseError, UnicodeDecodeError, RecursionError, ValueError):
        return data
    mutated = fmt_graphdef.parse(fmt_graphdef.mutate(graph.SerializeToString(deterministic=True), rng))
    return data if mutated is None else text_format.MessageToString(mutated).encode()
