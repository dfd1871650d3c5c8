"""foveal.erf: the theory's Gaussian on linear stacks, both protocols against hand-computed maps,
the numbers (area ratios against a brute force, normalisation, Gaussian fit), the inputs (noise,
image folders, tensors), the result's outputs and every bad input.

Models with real CPU weights are built here; nothing is mocked.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from foveal.erf import ErfResult, effective_receptive_field  # noqa: E402
from foveal.erf.inputs import IMAGENET_MEAN, IMAGENET_STD, input_source, load_image  # noqa: E402
from foveal.erf.stats import (  # noqa: E402
    area_ratios,
    gaussian_fit,
    log_normalise,
    nonzero_box,
    peak_normalise,
)
from foveal.errors import FovealError, InvalidParameterError, ShapeError, UnknownNodeError  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}


def ones_stack(n: int, kernel: int | tuple[int, ...], rank: int = 1, channels: int = 1) -> nn.Sequential:
    """n uniform layers: all-ones weights, no bias, no padding, no activation."""
    layers = [CONV[rank](1 if i == 0 else channels, channels, kernel, bias=False) for i in range(n)]
    for layer in layers:
        nn.init.ones_(layer.weight)
    return nn.Sequential(*layers)


def box_power(n: int, k: int) -> np.ndarray:
    """The n-fold convolution of a k-tap box: the gradient of a linear uniform stack."""
    out = np.ones(1)
    for _ in range(n):
        out = np.convolve(out, np.ones(k))
    return out


# -- Luo et al.'s linear stack: the Gaussian of the theory --------------------------------------

@pytest.mark.parametrize(("n", "k"), [(1, 2), (1, 3), (2, 3), (4, 3), (3, 5), (6, 2), (5, 4)])
def test_linear_stack_1d_is_the_theory_gaussian(n: int, k: int) -> None:
    r = effective_receptive_field(ones_stack(n, k), str(n - 1), input_shape=(1, 1, 41),
                                  reinitialize=False, samples=2)
    (start, end), = r.analytic_box
    assert end - start + 1 == n * (k - 1) + 1
    assert r.gaussian.mean[0] - start == pytest.approx(n * (k - 1) / 2, abs=1e-9)
    assert r.gaussian.sigma[0] ** 2 == pytest.approx(n * (k * k - 1) / 12, rel=1e-9)
    assert r.effective_box == r.analytic_box
    assert r.extent_ratio == (1.0,)
    expected = box_power(n, k)
    assert np.allclose(r.raw_map[start:end + 1], expected)
    assert r.raw_map[:start].sum() == 0 and r.raw_map[end + 1:].sum() == 0


@pytest.mark.parametrize(("n", "kernel", "size"), [(2, (3, 3), (33, 33)), (3, (3, 5), (30, 41)),
                                                   (4, (2, 4), (32, 27)), (1, (5, 1), (16, 16))])
def test_linear_stack_2d_per_axis(n: int, kernel: tuple[int, int], size: tuple[int, int]) -> None:
    r = effective_receptive_field(ones_stack(n, kernel, rank=2, channels=2), str(n - 1),
                                  input_shape=(1, 1, *size), reinitialize=False, samples=1)
    for axis, k in enumerate(kernel):
        start = r.analytic_box[axis][0]
        assert r.gaussian.mean[axis] - start == pytest.approx(n * (k - 1) / 2, abs=1e-9)
        assert r.gaussian.sigma[axis] ** 2 == pytest.approx(n * (k * k - 1) / 12, rel=1e-9, abs=1e-12)
    assert r.effective_box == r.analytic_box
    assert r.axes == ("H", "W") and r.input_shape == size and r.channels == 1


def test_linear_stack_3d_numbers_and_no_plot() -> None:
    r = effective_receptive_field(ones_stack(2, (3, 3, 5), rank=3), "1", input_shape=(1, 1, 9, 11, 13),
                                  reinitialize=False, samples=1)
    assert r.axes == ("D", "H", "W") and r.raw_map.shape == (9, 11, 13)
    assert [s ** 2 for s in r.gaussian.sigma] == pytest.approx([2 * 8 / 12, 2 * 8 / 12, 2 * 24 / 12])
    assert r.effective_box == r.analytic_box == ((2, 6), (3, 7), (2, 10))
    assert all(a.side is not None for a in r.area_ratios)
    with pytest.raises(FovealError, match="plot\\(\\) draws 1-D and 2-D maps; this map is 3-D"):
        r.plot()


def test_luo_random_weights_sigma_grows_like_sqrt_depth() -> None:
    """With zero-mean random weights the expected squared gradient is the n-fold convolution of
    the per-tap variances (sigma^2 = n(k^2-1)/12); for a Gaussian gradient E|g| is proportional to
    sqrt(E g^2), whose variance is twice that. So sigma(|g|) ~ sqrt(2 n (k^2-1)/12)."""

    def stack(n: int) -> nn.Sequential:
        middle = [nn.Conv1d(4, 4, 3) for _ in range(n - 2)]
        return nn.Sequential(nn.Conv1d(1, 4, 3), *middle, nn.Conv1d(4, 1, 3))

    sigma = {n: effective_receptive_field(stack(n), str(n - 1), input_shape=(1, 1, 64), samples=24,
                                          batch_size=1).gaussian.sigma[0] for n in (4, 16)}
    assert 1.6 < sigma[16] / sigma[4] < 3  # sqrt(4) = 2; the analytic RF grows 4 times
    assert sigma[16] == pytest.approx(math.sqrt(2 * 16 * 8 / 12), rel=0.2)


# -- the protocols against hand-computed maps ---------------------------------------------------

def test_replknet_protocol_averages_relu_gradients_over_images() -> None:
    """Positive inputs make the centre activation positive: M is the box power, whatever the
    number of images (RepLKNet's script keeps the running mean; a sum would change the log map)."""
    model = ones_stack(3, 3)
    x = torch.rand(5, 1, 21) + 0.1
    r = effective_receptive_field(model, "2", x, protocol="replknet", batch_size=2)
    assert r.samples == 5 and r.weight_draws == 0 and r.inputs == "tensors"
    start, end = r.analytic_box[0]
    expected = np.zeros(21)
    expected[start:end + 1] = box_power(3, 3)
    assert np.allclose(r.raw_map, expected)
    logged = np.log10(expected + 1)
    assert np.allclose(r.normalised_map, logged / logged.max())


def test_replknet_relu_masks_the_centre_and_the_gradient() -> None:
    negative = -torch.ones(2, 1, 15)  # all-ones weights: the centre activation is negative
    zero = effective_receptive_field(ones_stack(2, 3), "1", negative, protocol="replknet")
    assert not zero.raw_map.any() and zero.gaussian is None and zero.effective_box is None
    assert all(a.side is None and a.area_ratio is None for a in zero.area_ratios)
    assert any("all zero" in n for n in zero.notes)
    assert not zero.normalised_map.any()
    model = ones_stack(2, 3)
    with torch.no_grad():
        model[0].weight[0, 0, 0] = -1.5  # the gradient is negative on the region's first taps
    mixed = torch.ones(3, 1, 15)
    r = effective_receptive_field(model, "1", mixed, protocol="replknet")
    luo = effective_receptive_field(model, "1", mixed, reinitialize=False)
    start = r.analytic_box[0][0]
    # taps (-1.5, 1, 1) * (1, 1, 1) = (-1.5, -0.5, 0.5, 2, 1): the centre is 1.5 > 0 on ones, and
    # ReLU keeps the last three gradients; Luo keeps every |gradient|
    assert r.raw_map[start:start + 5].tolist() == pytest.approx([0, 0, 0.5, 2, 1])
    assert luo.raw_map[start:start + 5].tolist() == pytest.approx([1.5, 0.5, 0.5, 2, 1])


def test_batches_with_a_non_finite_gradient_are_left_out() -> None:
    class Square(nn.Module):
        def forward(self, x):
            return x * x

    model = nn.Sequential(*ones_stack(1, 3), Square())  # dz/dx = 2 F dF/dx: inf where F is
    x = torch.ones(4, 1, 9)
    x[2, 0, 4] = math.inf
    r = effective_receptive_field(model, "1", x, batch_size=2, reinitialize=False)
    assert r.samples == 2 and r.raw_map.tolist() == pytest.approx([0, 0, 0, 6, 6, 6, 0, 0, 0])
    assert any("left out 2 input(s)" in n for n in r.notes)
    with pytest.raises(FovealError, match="not finite"):
        effective_receptive_field(model, "1", x[2:], reinitialize=False)


def test_luo_redraws_weights_without_touching_the_model() -> None:
    model = ones_stack(3, 3, channels=2).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fixed = effective_receptive_field(model, "2", input_shape=(1, 1, 25), reinitialize=False, samples=2)
    drawn = effective_receptive_field(model, "2", input_shape=(1, 1, 25), samples=4, batch_size=2)
    again = effective_receptive_field(model, "2", input_shape=(1, 1, 25), samples=4, batch_size=2)
    other = effective_receptive_field(model, "2", input_shape=(1, 1, 25), samples=4, batch_size=2, seed=1)
    assert drawn.weight_draws == 2 and fixed.weight_draws == 0
    assert not np.allclose(drawn.normalised_map, fixed.normalised_map)
    assert np.array_equal(drawn.raw_map, again.raw_map)
    assert not np.array_equal(drawn.raw_map, other.raw_map)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_batch_norm_runs_in_eval_mode_on_a_copy() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU()).train()
    stats = model[1].running_mean.clone()
    r = effective_receptive_field(model, "2", input_shape=(1, 1, 12, 12), samples=2, batch_size=1,
                                  reinitialize=False)
    assert r.samples == 2 and model.training
    assert torch.equal(model[1].running_mean, stats)


def test_kept_parameters_are_named() -> None:
    class Scale(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gain = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x * self.gain

    model = nn.Sequential(nn.Conv1d(1, 1, 3), Scale())
    r = effective_receptive_field(model, "1", input_shape=(1, 1, 16), samples=1)
    assert any("1.gain" in n and "reset_parameters" in n for n in r.notes)


def test_in_place_ops_after_the_layer_do_not_change_it() -> None:
    """The first pass runs the whole model: a ReLU(inplace=True) after the layer must not rewrite
    the captured map (its gradient would then go through the ReLU)."""
    in_place = nn.Sequential(nn.Conv1d(1, 1, 3), nn.ReLU(inplace=True), nn.Conv1d(1, 1, 3))
    plain = nn.Sequential(nn.Conv1d(1, 1, 3), nn.ReLU(), nn.Conv1d(1, 1, 3))
    plain.load_state_dict(in_place.state_dict())
    x = torch.randn(6, 1, 16, generator=torch.Generator().manual_seed(0))
    first, second = (effective_receptive_field(m, "0", x, batch_size=2, reinitialize=False)
                     for m in (in_place, plain))
    assert np.array_equal(first.raw_map, second.raw_map)
    (start, end), = first.analytic_box  # the centre feature 7 of 14 reads pixels 7..9
    assert first.raw_map[start:end + 1].tolist() == pytest.approx(in_place[0].weight.abs().flatten().tolist())


def test_a_failing_head_after_the_layer_does_not_matter() -> None:
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))
    r = effective_receptive_field(model, "0", input_shape=(1, 1, 20, 20), samples=2, batch_size=1)
    assert r.feature_shape == (18, 18)


def test_progress_is_told_every_batch() -> None:
    calls: list[tuple[int, int | None]] = []
    effective_receptive_field(ones_stack(1, 3), "0", input_shape=(1, 1, 9), samples=5, batch_size=2,
                              progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 5), (2, 5), (4, 5), (5, 5)]
    calls.clear()
    effective_receptive_field(ones_stack(1, 3), "0", (torch.ones(2, 1, 9) for _ in range(2)),
                              progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, None), (2, None), (4, None)]


# -- the numbers ---------------------------------------------------------------------------------

def brute_area_ratio(values: np.ndarray, t: float) -> tuple[int, float] | None:
    """Grow a Chebyshev ball about size // 2 one pixel at a time: the first that holds more than t."""
    total = values.sum()
    if total <= 0:
        return None
    grid = np.indices(values.shape)
    centre = np.array([n // 2 for n in values.shape]).reshape((-1,) + (1,) * values.ndim)
    distance = np.abs(grid - centre).max(axis=0)
    for i in range(max(values.shape) + 1):
        inside = distance <= i
        if values[inside].sum() > t * total:
            extents = [min(c + i, n - 1) - max(c - i, 0) + 1 for n, c in zip(values.shape, centre.ravel())]
            return max(extents), inside.sum() / values.size  # the clipped box's side
    raise AssertionError("a ball covering the map holds everything")


def test_area_ratios_match_a_brute_force_on_random_maps() -> None:
    rng = np.random.default_rng(0)
    thresholds = (0.05, 0.2, 0.3, 0.5, 0.9, 0.99)
    for trial in range(150):
        shape = tuple(int(n) for n in rng.integers(1, 18, size=rng.integers(1, 4)))
        values = rng.random(shape) ** rng.choice([1, 4, 12])
        if trial % 3 == 0:
            values *= rng.random(shape) < 0.1  # sparse, maybe all zero
        if trial % 5 == 0:
            values = np.floor(values * 3)  # ties and plateaus
        for found, t in zip(area_ratios(values, thresholds), thresholds):
            expected = brute_area_ratio(values, t)
            if expected is None:
                assert found.side is None and found.area_ratio is None
            else:
                assert (found.side, found.area_ratio) == (expected[0], pytest.approx(expected[1])), (shape, t)


def test_area_ratio_of_a_known_map() -> None:
    values = np.zeros((9, 9))
    values[4, 4] = 10
    values[2:7, 2:7] += 1  # 25 + 10 = 35 in all
    ratios = {a.threshold: a for a in area_ratios(values)}
    assert ratios[0.2].side == 1 and ratios[0.2].area_ratio == pytest.approx(1 / 81)  # 11 > 7
    assert ratios[0.5].side == 3  # 19 > 17.5
    assert ratios[0.99].side == 5 and ratios[0.99].area_ratio == pytest.approx(25 / 81)
    with pytest.raises(ValueError, match="thresholds lie in"):
        area_ratios(values, (1.0,))
    with pytest.raises(ValueError, match="non-negative"):
        area_ratios(-values)


def test_the_area_ratio_side_never_exceeds_the_input() -> None:
    """About pixel 64 of a 128 map the square of side 127 misses row 0 and column 0; the next one
    (129 before clipping) is the whole map: side 128, not 129."""
    uniform = area_ratios(np.ones((128, 128)), (0.5, 0.99))
    assert (uniform[1].side, uniform[1].area_ratio) == (128, 1.0)
    assert uniform[0].side == 91 and uniform[0].area_ratio == pytest.approx(91 ** 2 / 128 ** 2)
    wide = area_ratios(np.ones((4, 128)), (0.999,))[0]  # clipped to 4 rows: 4 x 128, its side 128
    assert (wide.side, wide.area_ratio) == (128, 1.0)


def test_normalisations() -> None:
    values = np.array([[0.0, 9.0], [99.0, 999.0]])
    assert np.allclose(log_normalise(values), [[0, 1 / 3], [2 / 3, 1]])
    assert peak_normalise(values).max() == 1 and peak_normalise(values)[1, 0] == pytest.approx(99 / 999)
    assert not log_normalise(np.zeros((3, 3))).any() and not peak_normalise(np.zeros(4)).any()


def test_gaussian_fit_and_nonzero_box() -> None:
    delta = np.zeros((5, 7))
    delta[1, 5] = 2
    fit = gaussian_fit(delta)
    assert fit.mean == (1.0, 5.0) and fit.sigma == (0.0, 0.0)
    two = np.zeros(10)
    two[[2, 6]] = 1
    assert gaussian_fit(two).mean == (4.0,) and gaussian_fit(two).sigma == (2.0,)
    assert gaussian_fit(np.zeros(3)) is None
    assert nonzero_box(delta) == ((1, 1), (5, 5)) and nonzero_box(np.zeros(3)) is None


# -- inputs --------------------------------------------------------------------------------------

def write_images(folder, specs) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, mode, size, colour in specs:
        Image.new(mode, size, colour).save(folder / name)


def test_image_folder(tmp_path) -> None:
    write_images(tmp_path, [("a.png", "RGB", (40, 30), (255, 0, 0)),
                            ("b.jpg", "RGB", (20, 50), (0, 128, 255)), ("c.bmp", "L", (33, 33), 200)])
    write_images(tmp_path / "class", [("d.png", "RGBA", (64, 64), (10, 20, 30, 255))])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2))
    r = effective_receptive_field(model, "2", str(tmp_path), input_shape=(1, 3, 24, 24), protocol="replknet")
    assert r.inputs == "images" and r.samples == 4 and r.input_shape == (24, 24)
    assert any("skipped 1 unreadable" in n and "broken.png" in n for n in r.notes)
    assert any("fewer than the 50 samples" in n for n in r.notes)


def test_images_are_resized_cropped_and_normalised(tmp_path) -> None:
    write_images(tmp_path, [("wide.png", "RGB", (90, 30), (255, 128, 0))])
    image = load_image(tmp_path / "wide.png", (16, 20))
    assert image.shape == (3, 16, 20)
    assert image[:, 5, 5].tolist() == pytest.approx([1.0, 128 / 255, 0.0], abs=1e-6)
    source = input_source(tmp_path, (1, 3, 16, 20), samples=None, default_samples=50, batch_size=4, seed=0)
    batch = next(source.batches)
    expected = [(c - m) / s for c, m, s in zip((1.0, 128 / 255, 0.0), IMAGENET_MEAN, IMAGENET_STD)]
    assert batch.shape == (1, 3, 16, 20) and batch[0, :, 3, 7].tolist() == pytest.approx(expected, abs=1e-5)
    source = input_source(tmp_path, (1, 3, 8, 8), samples=None, default_samples=1, batch_size=1, seed=0,
                          mean=(0, 0, 0), std=(1, 1, 1))
    assert next(source.batches)[0, :, 0, 0].tolist() == pytest.approx([1.0, 128 / 255, 0.0], abs=1e-6)


def test_image_subset_is_seeded(tmp_path) -> None:
    write_images(tmp_path, [(f"{i}.png", "L", (8, 8), i * 20) for i in range(8)])
    first = [b.sum().item() for b in input_source(tmp_path, (1, 3, 8, 8), samples=3, default_samples=50,
                                                  batch_size=1, seed=0).batches]
    again = [b.sum().item() for b in input_source(tmp_path, (1, 3, 8, 8), samples=3, default_samples=50,
                                                  batch_size=1, seed=0).batches]
    other = [b.sum().item() for b in input_source(tmp_path, (1, 3, 8, 8), samples=3, default_samples=50,
                                                  batch_size=1, seed=5).batches]
    assert len(first) == 3 and first == again and first != other


def test_tensor_inputs_are_recut_and_capped() -> None:
    model = ones_stack(1, 3)
    r = effective_receptive_field(model, "0", [torch.ones(3, 1, 9), np.ones((4, 1, 9))], batch_size=2,
                                  samples=6, reinitialize=False)
    assert r.samples == 6 and r.inputs == "tensors"
    assert r.raw_map.tolist() == pytest.approx([0, 0, 0, 1, 1, 1, 0, 0, 0])
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(5, 1, 9), torch.zeros(5)),
                                         batch_size=2)
    pairs = effective_receptive_field(model, "0", loader, reinitialize=False)
    assert pairs.samples == 5 and np.array_equal(pairs.raw_map, r.raw_map)
    noise = effective_receptive_field(model, "0", input_shape=(7, 1, 9), reinitialize=False, samples=3)
    assert noise.samples == 3 and noise.inputs == "noise"


# -- outputs -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def result_2d() -> ErfResult:
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, dilation=2))
    return effective_receptive_field(model, "2", input_shape=(1, 1, 20, 24), samples=4)


def test_to_dict_is_json_and_small(result_2d: ErfResult) -> None:
    data = json.loads(json.dumps(result_2d.to_dict()))
    assert data["format"] == "foveal-erf" and data["layer"] == "2" and data["protocol"] == "luo"
    assert data["input_shape"] == [20, 24] and data["centre"] == [10, 12] and data["feature_centre"] == [7, 9]
    assert data["analytic_box"] == [[7, 13], [9, 15]] and data["analytic_note"] is None
    assert [a["threshold"] for a in data["area_ratios"]] == [0.2, 0.3, 0.5, 0.99]
    assert len(data["gaussian"]["sigma"]) == 2 and "raw_map" not in data
    full = json.loads(result_2d.to_json(maps=True))
    assert np.array_equal(np.array(full["raw_map"]), result_2d.raw_map)
    assert "t=0.99" in result_2d.summary() and "H 7..13, W 9..15 (7 x 7)" in str(result_2d)


def test_plot_writes_a_png_whole_or_not_at_all(result_2d: ErfResult, tmp_path) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "erf.png"
    figure = result_2d.plot(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    axes = figure.axes[0]
    assert axes.get_title() == "ERF of 2 (luo, 4 samples)"
    assert len(axes.patches) == 3  # analytic box, effective box, Gaussian ellipse
    with pytest.raises(FovealError, match="suffix"):
        result_2d.plot(tmp_path / "erf.jpeg")
    with pytest.raises(FovealError, match="does not exist"):
        result_2d.plot(tmp_path / "missing" / "erf.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["erf.png"]


def test_plot_1d_and_into_given_axes(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    r = effective_receptive_field(ones_stack(3, 3), "2", input_shape=(1, 1, 30), reinitialize=False,
                                  samples=1)
    ax = Figure().add_subplot()
    assert r.plot(ax=ax, title="mine") is ax.figure and ax.get_title() == "mine"
    assert [line.get_label() for line in ax.lines][:1] == ["normalised ERF"]
    r.plot(tmp_path / "line.svg")
    assert (tmp_path / "line.svg").read_text().lstrip().startswith("<?xml")


# -- bad inputs ----------------------------------------------------------------------------------

def test_unknown_layer_suggests_names() -> None:
    model = nn.Sequential()
    model.add_module("block", nn.Sequential(nn.Conv2d(1, 1, 3)))
    with pytest.raises(UnknownNodeError, match=r"unknown layer 'blok\.0'; did you mean 'block\.0'"):
        effective_receptive_field(model, "blok.0", input_shape=(1, 1, 8, 8))


@pytest.mark.parametrize(("layer", "message"), [
    ("2", r"outputs shape \(4, 3\), which has no spatial axes"),
    ("3", "outputs a tuple, not a tensor"),
])
def test_non_spatial_layers(layer: str, message: str) -> None:
    class Pair(nn.Module):
        def forward(self, x):
            return x, x

    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), Pair())
    with pytest.raises(FovealError, match=message):
        effective_receptive_field(model, layer, input_shape=(1, 1, 8, 8), samples=4)


def test_bad_shapes_and_arguments() -> None:
    model = ones_stack(1, 3, rank=2)
    with pytest.raises(FovealError, match=r"running the model on an input of shape \(4, 1, 8\) failed"):
        effective_receptive_field(model, "0", input_shape=(1, 1, 8))
    with pytest.raises(InvalidParameterError, match="input_shape must be"):
        effective_receptive_field(model, "0", input_shape=(8, 8))
    with pytest.raises(FovealError, match="noise inputs need input_shape"):
        effective_receptive_field(model, "0")
    with pytest.raises(ShapeError, match="one shape"):
        effective_receptive_field(model, "0", [torch.ones(1, 1, 8, 8), torch.ones(1, 1, 9, 9)])
    with pytest.raises(ShapeError, match="batch axis"):
        effective_receptive_field(model, "0", torch.ones(8, 8))
    with pytest.raises(InvalidParameterError, match="protocol must be one of luo, replknet"):
        effective_receptive_field(model, "0", input_shape=(1, 1, 8, 8), protocol="Luo")
    with pytest.raises(InvalidParameterError, match="samples must be an integer >= 1"):
        effective_receptive_field(model, "0", input_shape=(1, 1, 8, 8), samples=0)
    with pytest.raises(InvalidParameterError, match="mean and std normalise images"):
        effective_receptive_field(model, "0", input_shape=(1, 1, 8, 8), mean=(0, 0, 0))
    with pytest.raises(InvalidParameterError, match="thresholds"):  # before anything runs
        effective_receptive_field(None, "0", thresholds=(0.5, 2))
    with pytest.raises(FovealError, match="not a str"):
        effective_receptive_field("resnet18", "0", input_shape=(1, 1, 8, 8))


def test_bad_folders(tmp_path) -> None:
    model = nn.Conv2d(3, 1, 3)
    with pytest.raises(FovealError, match="does not exist"):
        effective_receptive_field(model, "", tmp_path / "missing")
    with pytest.raises(FovealError, match="has no image files"):
        effective_receptive_field(model, "", tmp_path)
    (tmp_path / "a.png").write_bytes(b"garbage")
    (tmp_path / "b.jpg").write_bytes(b"")
    with pytest.raises(FovealError, match=r"no readable image among 2 file\(s\)"):
        effective_receptive_field(model, "", tmp_path)
    with pytest.raises(ShapeError, match="images are read as RGB"):
        effective_receptive_field(nn.Conv2d(1, 1, 3), "", tmp_path, input_shape=(1, 1, 8, 8))


def test_model_problems() -> None:
    shared = nn.ReLU()
    twice = nn.Sequential(nn.Conv1d(1, 1, 3), shared, nn.Conv1d(1, 1, 3), shared)
    with pytest.raises(FovealError, match="runs 2 times in one forward pass"):
        effective_receptive_field(twice, "1", input_shape=(1, 1, 16))
    with torch.device("meta"):
        meta = nn.Conv1d(1, 1, 3)
    with pytest.raises(FovealError, match="meta device"):
        effective_receptive_field(meta, "", input_shape=(1, 1, 16))

    class Detached(nn.Module):
        def forward(self, x):
            return x.detach() * 2

    with pytest.raises(FovealError, match="does not depend on the input"):
        effective_receptive_field(Detached(), "", input_shape=(1, 1, 16))

    class Skipped(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.Conv1d(1, 1, 3), nn.Conv1d(1, 1, 3)

        def forward(self, x):
            return self.used(x)

    with pytest.raises(FovealError, match="did not run"):
        effective_receptive_field(Skipped(), "unused", input_shape=(1, 1, 16))


def test_unanalysable_model_keeps_the_reason() -> None:
    class Flip(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv1d(1, 1, 3)

        def forward(self, x):
            return self.conv(torch.flip(x, dims=[-1]).cumsum(-1))

    r = effective_receptive_field(Flip(), "conv", input_shape=(1, 1, 16), samples=2)
    assert r.analytic_box is None and r.analytic_note.startswith("analysis failed: ")
    assert r.effective_box is not None and r.extent_ratio is None
    assert "analytic RF of the centre feature: none (analysis failed" in r.summary()


def test_the_docs_example_runs_and_shows_true_values(tmp_path, monkeypatch, capsys) -> None:
    text = (Path(__file__).parents[1] / "docs" / "erf.md").read_text()
    block = re.findall(r"```python\n(.*?)```", text, re.S)[0]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(block, namespace)
    erf = namespace["erf"]
    assert erf.gaussian.mean == (16.0, 16.0) and erf.gaussian.sigma == pytest.approx((1.633, 1.633), abs=1e-3)
    assert erf.analytic_box == erf.effective_box == ((12, 20), (12, 20))
    assert erf.area_ratios[-1].side == 9
    assert capsys.readouterr().out.startswith("ERF of layer '3'")
    assert (tmp_path / "erf.png").read_bytes()[:4] == b"\x89PNG"
