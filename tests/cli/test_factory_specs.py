"""``module:factory`` specs: what counts as one, how the model registry builds from one, and the names
a run stores and shows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from torch import nn

from hwqnn._factory import canonical_spec, is_factory_spec, load_factory, safe_name, short_name
from hwqnn.errors import HwqnnError
from hwqnn.models import ModelError, create_model, model_spec

NETS = """
from torch import nn


def make(num_classes=10):
    return nn.Linear(4, num_classes)


def fixed():
    return nn.Linear(4, 2)


def shaped(num_classes=10, **kwargs):
    return nn.Linear(6, num_classes)


shaped.input_shape = (6,)


class Net(nn.Module):
    def __init__(self, num_classes=10, width=4):
        super().__init__()
        self.fc = nn.Linear(width, num_classes)

    @classmethod
    def small(cls, num_classes=10):
        return cls(num_classes, width=2)
"""


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(NETS)
    return path


@pytest.mark.parametrize("text, expected", [
    ("pkg.mod:make", True),
    ("nets.py:make", True),
    ("a/b/nets.py:Net.small", True),
    ("tiny_cnn", False),
    ("digits", False),
    ("pkg.mod:", False),
    (":make", False),
    ("pkg.mod:1make", False),
    ("C:\\data\\set", False),
    (None, False),
])
def test_what_is_a_factory_spec(text, expected):
    assert is_factory_spec(text) is expected


def test_num_classes_is_passed_when_the_factory_takes_it(nets):
    assert create_model(f"{nets}:make", num_classes=3).out_features == 3
    assert create_model(f"{nets}:fixed", num_classes=3).out_features == 2  # builds its own head
    assert create_model(f"{nets}:Net.small", num_classes=5).fc.in_features == 2


def test_other_keywords_reach_the_factory_and_its_errors_name_the_spec(nets):
    with pytest.raises(ModelError, match=r"--model .*nets\.py:fixed: the factory raised TypeError"):
        create_model(f"{nets}:fixed", width=3)


def test_model_spec_of_a_factory(nets):
    assert model_spec(f"{nets}:make").input_shape is None  # taken from the data
    assert model_spec(f"{nets}:shaped").input_shape == (6,)


def test_one_module_per_file(nets):
    first = load_factory(f"{nets}:Net", flag="--model")
    assert load_factory(f"{nets}:Net", flag="--model") is first
    assert isinstance(create_model(f"{nets}:make"), nn.Linear)


def test_module_specs_import_from_the_current_directory(nets, monkeypatch):
    name = "hwqnn_test_nets_from_cwd"
    (nets.parent / f"{name}.py").write_text(NETS)
    monkeypatch.chdir(nets.parent)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(nets.parent))])
    try:
        assert create_model(f"{name}:make", num_classes=4).out_features == 4
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("spec, fragment", [
    ("no_such_pkg_xyz.nets:make", "cannot import module 'no_such_pkg_xyz.nets' for --model no_such_pkg_xyz.nets:make: "
                                  "ModuleNotFoundError: No module named 'no_such_pkg_xyz'"),
    ("torch.nn:NoSuchLayer", "module 'torch.nn' has no attribute 'NoSuchLayer'"),
    ("torch:__version__", "is a TorchVersion, not a callable factory"),
    ("os.path:join", "the factory raised TypeError"),
])
def test_errors_name_the_import(spec, fragment):
    with pytest.raises(ModelError) as info:
        create_model(spec)
    assert fragment in str(info.value) and isinstance(info.value, HwqnnError)


def test_a_factory_must_return_a_module():
    with pytest.raises(ModelError, match="factory returned a str, expected torch.nn.Module"):
        create_model("os:getcwd")


def test_names_a_run_stores_and_shows(nets, monkeypatch):
    monkeypatch.chdir(nets.parent)
    assert canonical_spec("nets.py:make") == f"{nets.resolve()}:make"
    assert canonical_spec("pkg.mod:make") == "pkg.mod:make"
    assert short_name(f"{nets}:Net.small") == "nets.Net.small" and short_name("pkg.mod:make") == "pkg.mod.make"
    assert safe_name("../../p/my board") == "_.._p_my_board" and safe_name("..") == "unnamed"
    assert Path("runs", safe_name("../x")).resolve().parent == Path("runs").resolve()
