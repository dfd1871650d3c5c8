"""Every timm family against the NaN oracle: one small model per family (tests/timm_families.py),
built with random weights on the CPU, must be exact, and `foveal.pytorch.verify` (NaN injection
on the real model, several output positions per axis) must find the same region at each checked
position; window models' regions depend on the position. A sample of families runs by default,
all of them under `-m slow`. A new timm family fails the coverage test until it is listed.
"""

from __future__ import annotations

import importlib
import inspect

import pytest

torch = pytest.importorskip("torch")

import torch_models as TM  # noqa: E402
from timm_families import DEFAULT, FAMILIES, KNOWN_FAILURES, NOT_EXACT  # noqa: E402

import foveal  # noqa: E402
from foveal.pytorch import verify  # noqa: E402


@pytest.fixture(scope="module")
def timm():
    return TM.import_timm()


def _cases():
    for family in FAMILIES:
        marks = [] if family in DEFAULT else [pytest.mark.slow]
        if family in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[family]))
        yield pytest.param(family, marks=marks, id=family)


@pytest.mark.parametrize("family", _cases())
def test_family_agrees_with_nan_injection(timm, one_torch_thread, family: str) -> None:
    name, kwargs, shape = FAMILIES[family]
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    assert type(model).__module__ == f"timm.models.{family}", type(model)
    features = TM.features(model)
    out = foveal.receptive_field(features, shape).output
    assert out.status == "exact", out.reasons
    check = verify(features, shape, [out.name])
    assert check.agrees, check.summary()


def _families(timm) -> set[str]:
    """The modules under timm.models that define the class of a registered model: a module with
    registered entrypoints that defines an nn.Module with `forward_features` (byoanet, res2net,
    mobilevit... only configure classes defined elsewhere)."""
    found = set()
    for module_name in timm.list_modules():
        module = importlib.import_module(f"timm.models.{module_name}")
        if any(inspect.isclass(c) and issubclass(c, torch.nn.Module) and c.__module__ == module.__name__
               and hasattr(c, "forward_features") for c in vars(module).values()):
            found.add(module_name)
    return found


def test_every_timm_family_is_listed(timm) -> None:
    not_exact = {family for family, _ in NOT_EXACT}
    assert not not_exact & set(FAMILIES)
    assert set(DEFAULT) <= set(FAMILIES) and set(KNOWN_FAILURES) <= set(FAMILIES)
    listed = set(FAMILIES) | not_exact
    found = _families(timm)
    assert found - listed == set(), f"timm {timm.__version__}: families in neither FAMILIES nor NOT_EXACT"
    assert listed - found == set(), f"timm {timm.__version__}: listed families timm no longer has"
