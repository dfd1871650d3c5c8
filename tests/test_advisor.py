"""foveal.advise on real torchvision models: the acceptance of issue 21, the user's model
untouched, graph-only proposals, the CLI and the report section."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
import torch_models as TM  # noqa: E402

import foveal  # noqa: E402
from foveal.advisor import search  # noqa: E402
from foveal.cli import main  # noqa: E402


def snapshot(model):
    """What must not change: every module (name, type, object), every tensor (name, shape,
    object) and the values of a few weights."""
    modules = [(n, type(m), id(m)) for n, m in model.named_modules()]
    tensors = [(k, tuple(v.shape), id(v)) for k, v in model.state_dict(keep_vars=True).items()]
    values = {k: v.detach().clone() for k, v in model.state_dict().items()
              if k in ("conv1.weight", "fc.weight")}
    return modules, tensors, values


@pytest.fixture(scope="module")
def resnet16():
    tv = TM.import_torchvision()
    torch.manual_seed(0)
    model = tv.models.resnet18()
    before = snapshot(model)
    advice = foveal.advise(model, 16)
    return model, before, advice


def test_resnet18_at_16_efficiency_and_capacity(resnet16):
    model, _, advice = resnet16
    assert advice.needs_change and advice.before.unproductive_convs
    efficient, capacity = advice.proposal("efficiency"), advice.proposal("capacity")
    assert efficient is not None and capacity is not None and efficient is not capacity
    assert efficient.flops_ratio(advice.before) <= 0.3
    assert capacity.flops_ratio(advice.before) >= 2
    for proposal in (efficient, capacity):
        assert proposal.after.unproductive_convs == ()
        # the numbers are the re-analysed module's, not the search's estimate
        verdicts = foveal.receptive_field(proposal.module, (1, 3, 16, 16)).verdicts()
        convs = set(search.conv_nodes(proposal.analysis.graph))
        assert not [n for n in verdicts.unproductive() if n in convs]
        proposal.module.eval()
        with torch.no_grad():
            out = proposal.module(torch.randn(2, 3, 16, 16))
        assert out.shape == (2, 1000)
    assert capacity.after.productive_blocks == tuple(search.trunk_blocks(advice.analysis))
    # the efficient network starts as rfa_toolbox's README does: a 3x3 stem
    assert any(e.action == "shrink kernel" and e.paths == ("conv1",) for e in efficient.edits)
    assert efficient.module.conv1.kernel_size == (3, 3)


def test_resnet18_user_model_untouched(resnet16):
    model, before, advice = resnet16
    modules, tensors, values = snapshot(model)
    assert modules == before[0] and tensors == before[1]
    for key, value in before[2].items():
        assert torch.equal(value, values[key])
    assert model.conv1.kernel_size == (7, 7) and model.layer2[0].conv1.stride == (2, 2)
    ids = {id(p) for p in model.parameters()}
    for proposal in advice.proposals:
        assert proposal.module is not model
        assert not ids & {id(p) for p in proposal.module.parameters()}


def test_resnet18_text(resnet16):
    text = resnet16[2].to_text()
    assert "efficiency" in text and "capacity" in text and "conv1: kernel 7x7 -> 3x3" in text


@pytest.mark.parametrize("name", ["mobilenet_v2", "vgg11"])
def test_other_models_at_16(name):
    model = TM.torchvision_model(name)  # meta weights
    advice = foveal.advise(model, (1, 3, 16, 16))
    assert advice.needs_change
    clean = [p for p in advice.proposals if not p.after.unproductive_convs]
    assert clean
    for p in clean:
        assert p.after.output_shape == (1, 1000)  # ran on meta at 16 x 16
        assert p.module is not model
    if name == "vgg11":  # five poolings: VGG-11 cannot run at 16, its verdicts are estimated
        assert advice.before.estimated and advice.before.flops is None
        assert any("cannot run at 16x16" in n for n in advice.notes)


def test_resnet18_at_224_needs_no_change():
    advice = foveal.advise(TM.resnet18(), 224)
    assert not advice.needs_change and advice.proposals == ()
    assert "no change needed" in advice.to_text()


def test_graph_only_proposals_match_the_modules():
    graph = foveal.load_model("resnet18")
    advice = foveal.advise(graph, 16)
    assert advice.framework == "graph"
    for p in advice.proposals:
        assert p.module is None and p.after.flops is None and not p.after.unproductive_convs
        assert isinstance(p.graph, foveal.Graph)
    assert graph == foveal.load_model("resnet18")  # the user's graph is not edited
    words = [e.words for e in advice.proposal("capacity").edits]
    assert any(w.startswith("layer4.0.conv1: stride 2x2 -> 1") for w in words)


def test_downsampling_points_pair_residual_branches():
    analysis = foveal.receptive_field("resnet18", 16)
    points = search.downsamplings(analysis)
    assert [p.nodes for p in points] == [("conv1",), ("maxpool",),
                                         ("layer2.0.conv1", "layer2.0.downsample.0"),
                                         ("layer3.0.conv1", "layer3.0.downsample.0"),
                                         ("layer4.0.conv1", "layer4.0.downsample.0")]
    assert search.block_of("layer3.0.downsample.0") == "layer3.0"
    assert search.block_of("features.7.conv.1.0") == "features.7" and search.block_of("fc") is None


def test_cli_and_report(tmp_path, capsys):
    TM.import_torchvision()
    report = tmp_path / "advice.html"
    assert main(["advise", "resnet18", "--input-size", "16", "--report", str(report)]) == 0
    out = capsys.readouterr().out
    assert "efficiency" in out and "capacity" in out and "(0.16x)" in out
    page = report.read_text()
    assert 'id="advice"' in page and "conv1: kernel 7x7 -&gt; 3x3" in page
    assert main(["advise", "resnet18", "--input-size", "16", "--report", str(tmp_path / "a.txt")]) == 2


def test_stages_and_even_spread():
    from foveal.advisor import stages

    found = stages.stages(foveal.receptive_field(TM.resnet18(), (1, 3, 16, 16)))
    assert [(s.parent, s.blocks, s.template, s.next_index) for s in found] == [
        (f"layer{i}", (f"layer{i}.0", f"layer{i}.1"), f"layer{i}.1", 2) for i in range(1, 5)]
    # 8 blocks over three resolutions, the last of two stages (each keeps its first block)
    assert stages.spread(8, [1, 1, 2], late_ties=False) == [3, 3, 2]
    assert stages.spread(8, [1, 1, 2], late_ties=True) == [2, 3, 3]
    assert stages.spread(3, [1, 1, 2], late_ties=False) is None


def _rfa_performance(candidates):
    """rfa_toolbox's performance redesign among the candidates: stem 3x3 stride 1, no max-pooling,
    the final downsampling removed, 3, 3, 1, 1 blocks per stage."""
    wanted = {("shrink kernel", "conv1"), ("unstride", "conv1"), ("remove", "maxpool"),
              ("unstride", "layer4.0.conv1"), ("redistribute", "layer3.1")}
    for c in candidates:
        if ({(e.action, e.paths[0]) for e in c.plan.edits} == wanted
                and "2, 2, 2, 2 -> 3, 3, 1, 1" in c.plan.edits[-1].words):
            return c
    return None


def test_redistribution_makes_rfa_toolbox_performance_redesign():
    """The README's second redesign is in the search space; made on the module it has no
    unproductive convolution and 2 critical layers, as the README says, and runs at 16 x 16."""
    from foveal.advisor import torch_edit
    from foveal.pytorch.flops import flops_by_node

    tv = TM.import_torchvision()
    torch.manual_seed(0)
    model = tv.models.resnet18()
    shape = (1, 3, 16, 16)
    base = foveal.receptive_field(model, shape)
    found = _rfa_performance(search.candidates(base, flops_by_node(model, shape), (16, 16)))
    assert found is not None
    assert "new: layer1.2 (as layer1.1); layer2.2 (as layer2.1)" in found.plan.edits[-1].words
    assert found.plan.dropped_blocks == ("layer3.1", "layer4.1")
    made = torch_edit.realise(model, base.graph, found.plan, shape)
    module = made.module
    assert [len(module.get_submodule(f"layer{i}")) for i in range(1, 5)] == [3, 3, 2, 2]
    assert isinstance(module.layer3[1], torch.nn.Identity) and isinstance(module.layer4[1], torch.nn.Identity)
    # the new block has the stage's width and fresh weights, not the template's
    new, template = module.layer1[2], module.layer1[1]
    assert new.conv1.weight.shape == template.conv1.weight.shape
    assert new.conv1.weight is not template.conv1.weight
    assert not torch.equal(new.conv1.weight, template.conv1.weight)
    # the user's model is unchanged
    assert len(model.layer1) == 2 and model.conv1.stride == (2, 2) and model.conv1.kernel_size == (7, 7)
    analysis = foveal.receptive_field(module, shape)
    verdicts = analysis.verdicts()
    convs = set(search.conv_nodes(analysis.graph))
    assert not [n for n in verdicts.unproductive() if n in convs]
    assert verdicts.critical() == ["layer4.0.conv2", "avgpool"]
    # the search's edited graph agrees with the module it became, verdict by verdict
    assert {n: found.verdicts[n].kind for n in convs} == {n: verdicts[n].kind for n in convs}
    ratio = torch_edit.flops(made.shadow, shape) / torch_edit.flops(torch_edit.meta_copy(model), shape)
    assert 11 < ratio < 12  # 11.4x here (the README's figure: about 8x)
    module.eval()
    with torch.no_grad():
        assert module(torch.randn(2, 3, 16, 16)).shape == (2, 1000)


def test_dilation_reduced_on_dilated_resnet50():
    """ResNet-50 with layer3 and layer4 dilated instead of strided: at 16 px the dilated 3x3
    convolutions are unproductive; the capacity proposal sets their dilation to 1 rather than
    removing every downsampling."""
    tv = TM.import_torchvision()
    torch.manual_seed(0)
    model = tv.models.resnet50(replace_stride_with_dilation=[False, True, True])
    advice = foveal.advise(model, 16)
    capacity = advice.proposal("capacity")
    assert capacity is not None and capacity.after.unproductive_convs == ()
    assert len(capacity.after.productive_blocks) == capacity.after.blocks == 16
    reduced = [e for e in capacity.edits if e.action == "reduce kernel"]
    assert reduced and all("dilation" in e.words for e in reduced)
    words = [e.words.split(" (")[0] for e in reduced]
    assert "layer4.1.conv2: dilation 4x4 -> 1, padding 4x4 -> 1x1" in words
    assert capacity.module.layer4[1].conv2.dilation == (1, 1) and model.layer4[1].conv2.dilation == (4, 4)
    assert capacity.flops_ratio(advice.before) < 5  # removing every downsampling instead: about 60x
    capacity.module.eval()
    with torch.no_grad():
        assert capacity.module(torch.randn(2, 3, 16, 16)).shape == (2, 1000)
