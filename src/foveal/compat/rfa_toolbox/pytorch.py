"""create_graph_from_pytorch_model: a PyTorch model as rfa_toolbox nodes, with foveal's numbers.

The model is captured by foveal (torch.fx or torch.export on meta tensors: no forward pass, no
weights read, CUDA-only code fine), so functional convolutions, multi-output ops, dilation,
transposed convolution, upsampling and attention are all handled. Each node carries its min and
max receptive field and its largest cumulative stride as (r, j) pairs; border, critical and range
questions are answered by foveal at the asked resolution, with exact feature-map sizes.
"""

from __future__ import annotations

import math
from typing import Any

from ...errors import FovealError, ShapeError
from ...productivity import (
    ResolutionRange,
    Verdict,
    Verdicts,
    _estimated_map,
    classify,
    is_alias,
    layer_facts,
    step,
)
from .graphs import (
    KNOWN_FILTER_MAPPING,
    EnrichedNetworkNode,
    LayerDefinition,
    ReceptiveFieldInfo,
    _tuple,
)

INF = math.inf


class Captured:
    """The foveal graph behind converted nodes; analyses it at any resolution (cached)."""

    def __init__(self, analysis: Any) -> None:
        self.base = analysis
        self.graph = analysis.graph
        self._analyses: dict[tuple[int, ...], Any] = {}
        self._verdicts: dict[tuple[tuple[int, ...], bool], Verdicts] = {}
        self.facts = layer_facts(analysis)

    def _resolution(self, value: Any) -> tuple[int, ...]:
        value = _tuple(value)
        n = len(self.graph.axes)
        res = (value,) * n if not isinstance(value, tuple) else value
        if len(res) != n:
            raise FovealError(f"the model has {n} spatial axes, got input resolution {value}")
        return tuple(int(v) for v in res)

    def analysis(self, resolution: Any) -> Any:
        from ...api import receptive_field

        res = self._resolution(resolution)
        if res not in self._analyses:
            self._analyses[res] = receptive_field(self.graph, res, input=self.base.input)
        return self._analyses[res]

    def feature_map(self, name: str, resolution: Any) -> Any:
        """The exact size; rfa_toolbox's resolution // stride where the model cannot run."""
        try:
            shape = self.analysis(resolution)[name].output_shape
        except ShapeError:
            shape = _estimated_map(self.facts[name], self._resolution(resolution))
        return shape if len(shape) > 1 else shape[0]

    def verdicts(self, resolution: Any, filter_kernel_size_1: bool = False) -> Verdicts:
        key = (self._resolution(resolution), filter_kernel_size_1)
        if key not in self._verdicts:
            try:
                found = self.analysis(key[0]).verdicts(filter_kernel_size_1=filter_kernel_size_1)
            except ShapeError:  # too small to run: estimate feature maps as rfa_toolbox does
                found = classify(self.base, resolution=key[0], filter_kernel_size_1=filter_kernel_size_1)
            self._verdicts[key] = found
        return self._verdicts[key]

    def verdict(self, name: str, resolution: Any, filter_kernel_size_1: bool = False) -> Verdict:
        return self.verdicts(resolution, filter_kernel_size_1)[name]

    def resolution_range(self, filter_all_inf_rf: bool, filter_kernel_size_1: bool,
                         lower_bound: bool) -> ResolutionRange:
        return self.base.input_resolution_range(filter_all_inf_rf=filter_all_inf_rf,
                                                filter_kernel_size_1=filter_kernel_size_1,
                                                lower_bound=lower_bound)


def _filter(filter_rf: Any) -> Any:
    if callable(filter_rf):
        return filter_rf
    if filter_rf not in KNOWN_FILTER_MAPPING:
        raise FovealError(f"unknown filter_rf {filter_rf!r}: None, 'inf' or a callable")
    return KNOWN_FILTER_MAPPING[filter_rf]


def _infos(f: Any) -> tuple[ReceptiveFieldInfo, ...]:
    """Min and max pairs of the finite paths, and (inf, 1) when some path passes a global op."""
    infos: dict[ReceptiveFieldInfo, None] = {}
    if None not in f.finite_min:
        infos[ReceptiveFieldInfo(f.finite_min, f.max_stride)] = None
        infos[ReceptiveFieldInfo(f.finite_max, f.max_stride)] = None
    if INF in f.max_rf:
        infos[ReceptiveFieldInfo(tuple(INF for _ in f.max_rf), tuple(1 for _ in f.max_rf))] = None
    return tuple(infos)


def nodes_from_analysis(analysis: Any, filter_rf: Any = None,
                        layer_infos: dict[str, LayerDefinition] | None = None) -> EnrichedNetworkNode:
    """rfa_toolbox nodes for every layer of a foveal analysis; returns the output's node.
    layer_infos: the LayerDefinition of some nodes (custom layers), as the user described them."""
    from ...drawing import layer_type

    chosen = _filter(filter_rf)
    captured = Captured(analysis)
    facts = captured.facts
    graph, states = analysis.graph, analysis._states
    made: dict[str, EnrichedNetworkNode] = {}
    last = None
    for name, f in facts.items():
        if is_alias(graph.nodes[name].op):
            continue
        if not f.known:
            raise FovealError(f"layer {name!r} has no receptive field ({'; '.join(analysis[name].reasons)}), "
                              f"which rfa_toolbox's graph cannot hold; use foveal.receptive_field for the "
                              f"full analysis")
        op = graph.nodes[name].op
        n_in = states[f.sources[0]].sizes if f.sources else f.feature_map
        strides = tuple(step(op, i, n_in[i], f.feature_map[i]) for i in range(len(f.kernel)))
        kernel = INF if all(k == INF for k in f.kernel) else f.kernel
        layer = (layer_infos or {}).get(name) or LayerDefinition._unchecked(layer_type(analysis, name),
                                                                             kernel, strides)
        last = made[name] = EnrichedNetworkNode._from_capture(
            name, layer, [made[s] for s in f.sources if s in made], _infos(f), captured, chosen)
    output = analysis.output_name
    while output not in made and graph.nodes[output].sources:
        output = graph.nodes[output].sources[0]
    if last is None:
        raise FovealError("the model has no layer that depends on its input")
    return made.get(output, last)


def create_graph_from_pytorch_model(model: Any, filter_rf: Any = None, input_res: Any = (1, 3, 399, 399),
                                    custom_layers: Any = None, display_se_modules: bool = False,
                                    **options: Any) -> EnrichedNetworkNode:
    """rfa_toolbox's entry point. input_res is the full input shape (N, C, *spatial).

    custom_layers: class names; a class registered with
    `encodings.pytorch.add_custom_layer_handler` is kept whole as one window of the kernel and
    stride its handler gives. Other names, and display_se_modules, change nothing: foveal analyses
    every module exactly, squeeze-and-excitation blocks included (their global branch makes the
    max RF infinite, as rfa_toolbox shows with display_se_modules=True; input_resolution_range's
    filter_all_inf_rf handles that). Extra keyword options go to foveal.receptive_field
    (handlers=, unknown_policy=, capture=).
    """
    from ...api import receptive_field

    if not isinstance(input_res, (tuple, list)) or len(input_res) < 3:
        raise FovealError(f"input_res is the full input shape (N, C, *spatial), e.g. (1, 3, 399, 399); "
                          f"got {input_res!r}")
    handlers, layer_infos = _custom_layers(model, tuple(input_res), custom_layers or (), options)
    if handlers:
        options = {**options, "handlers": {**dict(options.get("handlers") or {}), **handlers}}
    analysis = receptive_field(model, tuple(input_res), **options)
    return nodes_from_analysis(analysis, filter_rf, layer_infos)


_MARK = "rfa_toolbox custom layer "


def _custom_layers(model: Any, input_res: tuple[int, ...], custom_layers: Any, options: dict[str, Any]
                   ) -> tuple[dict[Any, Any], dict[str, LayerDefinition]]:
    """Handlers for the modules whose class is named in custom_layers and registered with
    add_custom_layer_handler, and their LayerDefinitions by node name.

    rfa_toolbox's kernel and stride say nothing of padding, which foveal needs for exact sizes:
    a first capture with each such module as a marker reads its real input and output sizes, and
    the padding is the smallest total that gives them, split as evenly as it goes (the odd pixel
    after)."""
    from ... import ops as O
    from ...frontend import Request
    from ...frontends import find
    from ...input_spec import parse
    from ...pytorch.capture import qualified_name
    from .encodings.pytorch.utils import CUSTOM_LAYERS

    found: dict[int, tuple[Any, Any]] = {}  # id(module) -> (module, CustomLayer)
    for _, module in model.named_modules():
        for key in (type(module).__name__, qualified_name(type(module))):
            if key in custom_layers and key in CUSTOM_LAYERS:
                found[id(module)] = (module, CUSTOM_LAYERS[key])
    if not found:
        return {}, {}
    classes = {type(module) for module, _ in found.values()}
    markers = {cls: (lambda module: O.Unknown(f"{_MARK}{id(module)}")) for cls in classes}
    request = Request(parse(input_res), handlers={**dict(options.get("handlers") or {}), **markers},
                      capture=options.get("capture", "fx"))
    conversion = find(model).convert(model, request)
    pads: dict[int, tuple[tuple[int, int], ...]] = {}
    layer_infos: dict[str, LayerDefinition] = {}
    for name, node in conversion.graph.nodes.items():
        if not (isinstance(node.op, O.Unknown) and node.op.name.startswith(_MARK)):
            continue
        module, custom = found[int(node.op.name[len(_MARK):])]
        kernel, stride = custom.kernel_size_provider(module), custom.stride_size_provider(module)
        sizes_in, sizes_out = conversion.expected[node.sources[0]], conversion.expected[name]
        pads[id(module)] = tuple(_padding(name, _at(kernel, i), _at(stride, i), n, out)
                                 for i, (n, out) in enumerate(zip(sizes_in, sizes_out)))
        layer_infos[name] = LayerDefinition(custom.name_provider(module, custom.class_name), kernel, stride,
                                            custom.filters_provider(module), custom.units_provider(module))

    def window(module: Any) -> Any:
        _, custom = found[id(module)]
        return O.Window(custom.kernel_size_provider(module), custom.stride_size_provider(module), 1,
                        pads[id(module)], False, "conv")

    return {cls: window for cls in classes}, layer_infos


def _at(value: Any, axis: int) -> Any:
    return value[axis] if isinstance(value, (tuple, list)) else value


def _padding(name: str, kernel: int, stride: int, size_in: int | None, size_out: int | None
             ) -> tuple[int, int]:
    """The smallest total padding P with floor((n + P - k) / s) + 1 == out, as (before, after)."""
    if size_in is None or size_out is None:
        raise FovealError(f"custom layer {name!r}: its input and output sizes are unknown, so no padding "
                          f"gives them; analyse the model with foveal.receptive_field and handlers=")
    low = max(0, (size_out - 1) * stride + kernel - size_in)
    if low > size_out * stride + kernel - size_in - 1:
        raise FovealError(f"custom layer {name!r}: a window of kernel {kernel} and stride {stride} cannot "
                          f"turn {size_in} positions into the module's {size_out}; check its handler's "
                          f"kernel_size_provider and stride_size_provider")
    return low // 2, low - low // 2
