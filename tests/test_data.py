"""Data loading: embedded digits, CIFAR-10 from .npz or python batches, loaders, augmentation, errors."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

from hwqnn.data import (
    CIFAR10_CLASSES,
    fixed_sample,
    load_dataset,
    make_loader,
    random_crop_flip,
    split_train_val,
)
from hwqnn.errors import DataError

SHARED_CIFAR = Path(__file__).parents[1].parent / "shared/data/cifar10_10k.npz"


# --- digits ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits", seed=0)


def test_digits_shapes_and_types(digits):
    images, labels = digits.train.tensors
    assert (digits.name, digits.num_classes, digits.input_shape) == ("digits", 10, (1, 8, 8))
    assert digits.classes == [str(d) for d in range(10)]
    assert images.shape == (1437, 1, 8, 8) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and digits.test.tensors[0].shape == (360, 1, 8, 8)
    assert len(digits.mean) == len(digits.std) == 1


def test_digits_standardised_with_train_statistics(digits):
    images = digits.train.tensors[0]
    assert abs(images.mean().item()) < 1e-5 and abs(images.std(correction=0).item() - 1) < 1e-4
    raw_train_pixel = images * digits.std[0] + digits.mean[0]
    assert raw_train_pixel.min() > -1e-5 and raw_train_pixel.max() < 1 + 1e-5  # pixels / 16 in [0, 1]


def test_digits_split_is_stratified_and_partitions_the_set(digits):
    from sklearn.datasets import load_digits

    test_counts = torch.bincount(digits.test.tensors[1], minlength=10)
    assert test_counts.min() >= 35 and test_counts.max() <= 37  # 20% of ~180 per class
    # Undo the standardisation: train + test is exactly the 1,797 images of scikit-learn, each once.
    both = torch.cat([digits.train.tensors[0], digits.test.tensors[0]]).double()
    raw = torch.round((both * digits.std[0] + digits.mean[0]) * 16).to(torch.int64).flatten(1)
    reference = torch.from_numpy(load_digits().images.astype(np.int64)).flatten(1)
    as_sorted_rows = lambda rows: sorted(map(tuple, rows.tolist()))  # noqa: E731
    assert as_sorted_rows(raw) == as_sorted_rows(reference)


def test_digits_deterministic_per_seed(digits):
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    assert torch.equal(again.train.tensors[0], digits.train.tensors[0])
    assert torch.equal(again.test.tensors[1], digits.test.tensors[1])
    assert not torch.equal(other.test.tensors[1], digits.test.tensors[1])


# --- CIFAR-10 -------------------------------------------------------------------------------------
@pytest.mark.skipif(not SHARED_CIFAR.is_file(), reason=f"shared CIFAR-10 subset not found at {SHARED_CIFAR}")
def test_cifar10_from_shared_npz():
    data = load_dataset("cifar10", SHARED_CIFAR)
    images, labels = data.train.tensors
    assert (data.name, data.num_classes, data.input_shape) == ("cifar10", 10, (3, 32, 32))
    assert images.shape == (10000, 3, 32, 32) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and len(data.test) == 10000
    assert data.classes == list(CIFAR10_CLASSES)
    assert torch.bincount(labels).tolist() == [1000] * 10
    per_channel = images.std(dim=(0, 2, 3), correction=0)
    assert torch.allclose(per_channel, torch.ones(3), atol=1e-4)
    assert 0.4 < data.mean[0] < 0.55 and 0.2 < data.std[0] < 0.3  # CIFAR-10 red channel


def _synthetic(n_train: int = 12, n_test: int = 6, seed: int = 0):
    rng = np.random.default_rng(seed)
    x_train = rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8)
    return x_train, np.arange(n_train) % 10, x_test, np.arange(n_test) % 10


def _write_npz(path: Path, arrays, **extra) -> Path:
    x_train, y_train, x_test, y_test = arrays
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, **extra)
    return path


def _write_batches(directory: Path, arrays, names=None) -> Path:
    x_train, y_train, x_test, y_test = arrays
    directory.mkdir(parents=True, exist_ok=True)
    as_rows = lambda x: x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # noqa: E731  (R, G, B planes)
    half = len(x_train) // 2
    parts = {"data_batch_1": slice(0, half), "data_batch_2": slice(half, None)}
    for file_name, part in parts.items():
        batch = {b"data": as_rows(x_train[part]), b"labels": [int(v) for v in y_train[part]]}
        (directory / file_name).write_bytes(pickle.dumps(batch))
    test = {b"data": as_rows(x_test), b"labels": [int(v) for v in y_test]}
    (directory / "test_batch").write_bytes(pickle.dumps(test))
    if names:
        (directory / "batches.meta").write_bytes(pickle.dumps({b"label_names": [n.encode() for n in names]}))
    return directory


def _expected_train(x_train: np.ndarray) -> torch.Tensor:
    images = torch.from_numpy(x_train).permute(0, 3, 1, 2).double() / 255
    std, mean = torch.std_mean(images, dim=(0, 2, 3), correction=0, keepdim=True)
    return ((images - mean) / std).float()


def test_cifar10_npz_layout_and_normalisation(tmp_path):
    arrays = _synthetic()
    data = load_dataset("cifar10", _write_npz(tmp_path / "mine.npz", arrays, classes=np.array(list("abcdefghij"))))
    assert data.classes == list("abcdefghij")
    assert data.train.tensors[0].shape == (12, 3, 32, 32)
    assert torch.allclose(data.train.tensors[0], _expected_train(arrays[0]), atol=1e-5, rtol=0)
    assert data.train.tensors[1].tolist() == arrays[1].tolist()


def test_cifar10_python_batches_equal_the_npz(tmp_path):
    arrays = _synthetic()
    from_npz = load_dataset("cifar10", _write_npz(tmp_path / "c.npz", arrays))
    from_batches = load_dataset("cifar10", _write_batches(tmp_path / "batches", arrays, names=list("ABCDEFGHIJ")),
                                allow_pickle=True)
    nested = load_dataset("cifar10", _write_batches(tmp_path / "top" / "cifar-10-batches-py", arrays).parent,
                          allow_pickle=True)
    for data in (from_batches, nested):
        for split in ("train", "test"):
            for mine, reference in zip(getattr(data, split).tensors, getattr(from_npz, split).tensors):
                assert torch.equal(mine, reference)
    assert from_batches.classes == list("ABCDEFGHIJ") and nested.classes == list(CIFAR10_CLASSES)


def test_cifar10_directory_prefers_cifar10_npz(tmp_path):
    _write_npz(tmp_path / "a_other.npz", _synthetic(n_train=14))
    _write_npz(tmp_path / "cifar10_small.npz", _synthetic(n_train=16))
    np.savez(tmp_path / "0_unrelated.npz", weights=np.zeros(3))
    assert len(load_dataset("cifar10", tmp_path).train) == 16
    (tmp_path / "cifar10_small.npz").unlink()
    assert len(load_dataset("cifar10", str(tmp_path)).train) == 14


# --- errors ---------------------------------------------------------------------------------------
def test_unknown_dataset_lists_known():
    with pytest.raises(DataError, match=r"'mnist'.*digits, cifar10"):
        load_dataset("mnist")


def test_cifar10_without_data_dir():
    with pytest.raises(DataError, match="data_dir"):
        load_dataset("cifar10")


def test_cifar10_missing_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("cifar10", tmp_path / "nowhere.npz")


def test_cifar10_npz_missing_keys(tmp_path):
    np.savez(tmp_path / "partial.npz", x_train=np.zeros((2, 32, 32, 3), np.uint8), y_train=np.zeros(2))
    with pytest.raises(DataError, match=r"lacks key\(s\) \['x_test', 'y_test'\]"):
        load_dataset("cifar10", tmp_path / "partial.npz")


def test_cifar10_npz_bad_shape_or_dtype(tmp_path):
    x_train, y_train, x_test, y_test = _synthetic()
    path = _write_npz(tmp_path / "gray.npz", (x_train[..., 0], y_train, x_test, y_test))
    with pytest.raises(DataError, match="x_train has shape"):
        load_dataset("cifar10", path)
    path = _write_npz(tmp_path / "float.npz", (x_train / 255.0, y_train, x_test, y_test))
    with pytest.raises(DataError, match="x_train has dtype float64; expected uint8"):
        load_dataset("cifar10", path)


def test_cifar10_labels_out_of_range(tmp_path):
    x_train, y_train, x_test, y_test = _synthetic()
    path = _write_npz(tmp_path / "labels.npz", (x_train, y_train + 5, x_test, y_test))
    with pytest.raises(DataError, match=r"train labels span 5\.\.14"):
        load_dataset("cifar10", path)


def test_cifar10_file_that_is_not_npz(tmp_path):
    (tmp_path / "notes.txt").write_text("not an archive")
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 truncated zip")
    for name in ("notes.txt", "broken.npz"):
        with pytest.raises(DataError, match=f"cannot read .*{name}"):
            load_dataset("cifar10", tmp_path / name)


def test_cifar10_empty_directory(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10 data"):
        load_dataset("cifar10", tmp_path)


def test_cifar10_corrupt_batch(tmp_path):
    directory = _write_batches(tmp_path, _synthetic())
    (directory / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DataError, match="test_batch"):
        load_dataset("cifar10", directory, allow_pickle=True)


# --- loaders, augmentation, splits ----------------------------------------------------------------
def _toy_dataset(n: int = 40) -> TensorDataset:
    images = torch.arange(n * 3 * 8 * 8, dtype=torch.float32).reshape(n, 3, 8, 8)
    return TensorDataset(images, torch.arange(n) % 4)


def _batches(loader):
    return [[t.clone() for t in batch] for batch in loader]


def test_loader_order_and_determinism():
    dataset = _toy_dataset()
    test_batches = _batches(make_loader(dataset, 16, train=False))
    assert torch.equal(torch.cat([y for _, y in test_batches]), dataset.tensors[1])
    first, second = make_loader(dataset, 16, train=True, seed=3), make_loader(dataset, 16, train=True, seed=3)
    assert first.num_workers == 0
    for _ in range(2):  # two epochs
        for (xa, ya), (xb, yb) in zip(_batches(first), _batches(second)):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    shuffled = torch.cat([y for _, y in _batches(make_loader(dataset, 16, train=True, seed=4))])
    order = torch.cat([x[:, 0, 0, 0] for x, _ in _batches(make_loader(dataset, 16, train=True, seed=4))])
    assert not torch.equal(order, dataset.tensors[0][:, 0, 0, 0])
    assert sorted(shuffled.tolist()) == sorted(dataset.tensors[1].tolist())


def test_augmentation_is_a_padded_crop_or_its_mirror():
    dataset = _toy_dataset(24)
    (augmented, labels), = _batches(make_loader(dataset, 24, train=False, augment=True, seed=1))
    assert augmented.shape == dataset.tensors[0].shape and torch.equal(labels, dataset.tensors[1])
    padded = F.pad(dataset.tensors[0], (4, 4, 4, 4))
    flips = 0
    for image, source in zip(augmented, padded):
        crops = [source[:, top:top + 8, left:left + 8] for top in range(9) for left in range(9)]
        plain = any(torch.equal(image, crop) for crop in crops)
        mirrored = any(torch.equal(image, crop.flip(-1)) for crop in crops)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 0 < flips < 24


def test_augmentation_deterministic_given_seed():
    images = torch.randn(32, 3, 32, 32)
    same = [random_crop_flip(images, torch.Generator().manual_seed(5)) for _ in range(2)]
    other = random_crop_flip(images, torch.Generator().manual_seed(6))
    assert torch.equal(same[0], same[1]) and not torch.equal(same[0], other)
    dataset = TensorDataset(images, torch.zeros(32, dtype=torch.int64))
    runs = [_batches(make_loader(dataset, 8, train=True, augment=True, seed=2)) for _ in range(2)]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(*runs))


@pytest.mark.parametrize("bad", [0, -2, 1.5])
def test_bad_batch_size(bad):
    with pytest.raises(DataError, match="batch_size"):
        make_loader(_toy_dataset(), bad, train=True)


def test_split_train_val_is_deterministic_stratified_and_complete(digits):
    train, val = split_train_val(digits.train, val_fraction=0.2, seed=0)
    again_train, _ = split_train_val(digits.train, val_fraction=0.2, seed=0)
    other_train, _ = split_train_val(digits.train, val_fraction=0.2, seed=1)
    assert len(val) == round(0.2 * len(digits.train)) and len(train) + len(val) == len(digits.train)
    assert torch.equal(train.tensors[0], again_train.tensors[0])
    assert not torch.equal(train.tensors[1], other_train.tensors[1])
    val_counts = torch.bincount(val.tensors[1], minlength=10)
    assert val_counts.max() - val_counts.min() <= 1


def test_split_train_val_partitions_examples_with_labels_attached():
    ids = torch.arange(50)
    train, val = split_train_val(TensorDataset(ids, ids % 5), val_fraction=0.3, seed=0)
    assert sorted(torch.cat([train.tensors[0], val.tensors[0]]).tolist()) == list(range(50))
    for part in (train, val):
        assert torch.equal(part.tensors[1], part.tensors[0] % 5)
    assert torch.bincount(val.tensors[1]).tolist() == [3] * 5


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 0.001])
def test_split_train_val_rejects_bad_fraction(fraction):
    with pytest.raises(DataError, match="val_fraction"):
        split_train_val(_toy_dataset(40), val_fraction=fraction)


# --- safety: no data file runs code ---------------------------------------------------------------
class _Payload:
    """Pickles as a call of ``exec`` that creates ``marker``: what a crafted CIFAR-10 batch would hold."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _write_crafted_batches(directory: Path, marker: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("data_batch_1", "test_batch", "batches.meta"):
        (directory / name).write_bytes(pickle.dumps({b"data": _Payload(marker), b"labels": [0],
                                                     b"label_names": [_Payload(marker)]}))
    return directory


def test_the_crafted_payload_is_live(tmp_path):
    """Plain pickle.load would run it: the tests below would notice if hwqnn did."""
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.exists()


@pytest.mark.parametrize("allow_pickle", [False, True])
def test_a_crafted_pickle_never_runs(tmp_path, allow_pickle):
    marker = tmp_path / "ran"
    directory = _write_crafted_batches(tmp_path / "batches", marker)
    expected = "refusing to load global builtins.exec" if allow_pickle else "--allow-pickle"
    with pytest.raises(DataError, match=expected):
        load_dataset("cifar10", directory, allow_pickle=allow_pickle)
    assert not marker.exists()


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_opted_in_batches_read_numpy_arrays_of_any_pickle_protocol(tmp_path, protocol):
    x_train, y_train, x_test, y_test = _synthetic()
    rows = lambda x: x.transpose(0, 3, 1, 2).reshape(len(x), -1)  # noqa: E731
    for name, (x, y) in {"data_batch_1": (x_train, y_train), "test_batch": (x_test, y_test)}.items():
        batch = {b"batch_label": b"x", b"data": rows(x), b"labels": [int(v) for v in y], b"filenames": [b"a.png"]}
        (tmp_path / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    data = load_dataset("cifar10", tmp_path, allow_pickle=True)
    assert len(data.train) == len(x_train) and data.test.tensors[1].tolist() == y_test.tolist()


def test_npz_is_preferred_and_never_needs_the_opt_in(tmp_path):
    _write_crafted_batches(tmp_path, tmp_path / "ran")
    _write_npz(tmp_path / "cifar10.npz", _synthetic())
    assert len(load_dataset("cifar10", tmp_path).train) == 12
    assert not (tmp_path / "ran").exists()


def test_npz_with_object_arrays_is_refused(tmp_path):
    x_train, y_train, x_test, y_test = _synthetic()
    np.savez(tmp_path / "objects.npz", x_train=x_train, y_train=np.array([_Payload(tmp_path / "ran")] * 12),
             x_test=x_test, y_test=y_test)
    with pytest.raises(DataError, match="cannot read"):
        load_dataset("cifar10", tmp_path / "objects.npz")
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("content, fragment", [
    (b"", "the file is empty"),
    (b"\x93NUMPY", "cannot read"),
])
def test_unreadable_npz_files(tmp_path, content, fragment):
    (tmp_path / "x.npz").write_bytes(content)
    with pytest.raises(DataError, match=fragment):
        load_dataset("cifar10", tmp_path / "x.npz")


def test_npz_with_zero_images(tmp_path):
    x_train, y_train, x_test, y_test = _synthetic()
    path = _write_npz(tmp_path / "zero.npz", (x_train, y_train, x_test[:0], y_test[:0]))
    with pytest.raises(DataError, match="no test images"):
        load_dataset("cifar10", path)


# --- a user's own data ----------------------------------------------------------------------------
USER_DATA = """
import torch
from torch.utils.data import TensorDataset


class Blobs:
    name = "blobs"
    classes = ["a", "b", "c"]

    def __init__(self, seed):
        g = torch.Generator().manual_seed(seed)
        y = torch.arange(30) % 3
        x = torch.randn(30, 2, 4, 4, generator=g) + y[:, None, None, None]
        self.train, self.test = TensorDataset(x[:20], y[:20]), TensorDataset(x[20:], y[20:])


def blobs(seed=0):
    return Blobs(seed)


def pairs():
    items = [(torch.full((3,), float(i)), i % 4) for i in range(8)]
    return items[:6], items[6:]


def seen(data_dir, seed):
    return [(torch.zeros(1), int(data_dir == "here") + seed)], [(torch.zeros(1), 0)]


def declares_too_few_classes():
    data = Blobs(0)
    data.num_classes = 2
    return data


def bad_label():
    return [(torch.zeros(2), 0.5)], [(torch.zeros(2), 0)]


def shapes_differ():
    return [(torch.zeros(2), 0)], [(torch.zeros(3), 0)]
"""


@pytest.fixture
def user_data(tmp_path):
    path = tmp_path / "user_data.py"
    path.write_text(USER_DATA)
    return path


def test_user_data_object_with_attributes(user_data):
    data = load_dataset(f"{user_data}:blobs", seed=3)
    assert (data.name, data.num_classes, data.input_shape, data.classes) == ("blobs", 3, (2, 4, 4), ["a", "b", "c"])
    assert len(data.train) == 20 and len(data.test) == 10


def test_user_data_tuple_infers_shape_and_classes(user_data):
    data = load_dataset(f"{user_data}:pairs")
    assert (data.num_classes, data.input_shape, data.name) == (4, (3,), "user_data.pairs")
    assert data.classes == ["0", "1", "2", "3"]


def test_user_data_factory_gets_data_dir_and_seed(user_data):
    assert load_dataset(f"{user_data}:seen", "here", seed=4).num_classes == 6  # label 1 + 4, plus one


def test_user_data_from_an_importable_module(user_data, monkeypatch):
    monkeypatch.syspath_prepend(str(user_data.parent))
    assert load_dataset("user_data:pairs").num_classes == 4


@pytest.mark.parametrize("factory, fragment", [
    ("declares_too_few_classes", "num_classes is 2"),
    ("bad_label", "expected an int class index"),
    ("shapes_differ", "test inputs"),
    ("missing", "has no attribute 'missing'"),
])
def test_bad_user_data_names_the_spec(user_data, factory, fragment):
    with pytest.raises(DataError, match=fragment) as info:
        load_dataset(f"{user_data}:{factory}")
    assert f"{user_data}:{factory}" in str(info.value)


def test_missing_user_module_names_the_import():
    with pytest.raises(DataError, match=r"cannot import module 'no_such_pkg_xyz\.data' for --data "
                                        r"no_such_pkg_xyz\.data:make: ModuleNotFoundError"):
        load_dataset("no_such_pkg_xyz.data:make")


def _class_sorted(classes=10, per_class=50):
    labels = torch.arange(classes).repeat_interleave(per_class)
    return TensorDataset(labels.float()[:, None].repeat(1, 4), labels)


def test_fixed_sample_draws_across_a_class_sorted_set_and_repeats():
    data = _class_sorted()
    images, labels = fixed_sample(data, 64, seed=3)
    assert images.shape == (64, 4) and len(set(labels.tolist())) >= 8  # the first 64 would be one class
    assert torch.equal(images[:, 0].long(), labels)  # images and labels stay paired
    again, _ = fixed_sample(data, 64, seed=3)
    assert torch.equal(images, again)
    everything, _ = fixed_sample(data, 10_000)
    assert len(everything) == len(data)
