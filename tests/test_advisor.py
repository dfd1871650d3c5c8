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
