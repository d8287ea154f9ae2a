"""Data sets as in-memory tensors: the embedded scikit-learn digits (the default run) and CIFAR-10 read
from a ``.npz`` file or the standard python batches. Nothing is downloaded.

Both are small enough to hold as one float tensor, so loaders use no worker processes and augmentation
runs on whole batches (a collate function), not per image.

A user's own data comes from a factory named ``package.module:factory`` or ``path/to/file.py:factory``
(see :func:`load_dataset`).

Reading never runs code from a data file: ``.npz`` archives are opened with ``allow_pickle=False``, and
the CIFAR-10 python batches, which are pickles, are read only when the caller opts in (``allow_pickle``,
``--allow-pickle``), and then by an unpickler that builds nothing but plain containers and numpy arrays.
"""

from __future__ import annotations

import codecs
import io
import logging
import pickle
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import DataLoader, TensorDataset

from ._factory import is_factory_spec
from .errors import DataError

log = logging.getLogger(__name__)

DATASETS = ("digits", "cifar10")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
CIFAR_BATCH_DIR = "cifar-10-batches-py"
CROP_PADDING = 4


@dataclass
class DatasetSplits:
    """A train and a test split of normalised NCHW float32 images with int64 labels.

    ``mean``/``std`` are the per-channel statistics (of the training split, after scaling pixels to
    [0, 1]) that were subtracted and divided; apply the same to new images.
    """

    train: TensorDataset  # any map-style dataset of (input, label) for a user's own data
    test: TensorDataset
    num_classes: int
    input_shape: tuple[int, ...]
    classes: list[str]
    name: str
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()


# --- loading --------------------------------------------------------------------------------------
def load_dataset(name: str = "digits", data_dir: str | Path | None = None, *, seed: int = 0,
                 allow_pickle: bool = False) -> DatasetSplits:
    """Load ``digits`` (embedded), ``cifar10`` (from ``data_dir``) or a user's data factory.

    ``seed`` picks digits' stratified 80/20 train/test split; CIFAR-10 has a fixed split and ignores it.
    ``allow_pickle`` lets CIFAR-10 be read from the official python batches (pickles; read with an
    unpickler restricted to containers and numpy arrays); without it only ``.npz`` archives are read.

    ``name`` may be ``package.module:factory`` or ``path/to/file.py:factory``: the factory (called with
    ``data_dir=`` and ``seed=`` if it accepts them) returns an object with ``.train`` and ``.test``
    (map-style datasets of ``(input tensor, int label)``) and optionally ``.num_classes``,
    ``.input_shape``, ``.name``, ``.classes``; or a tuple ``(train, test)``. What is absent is inferred
    from the data.
    """
    if is_factory_spec(name):
        from ._user_data import load_user_data

        return load_user_data(name, data_dir, seed)
    key = str(name).lower().replace("-", "")
    if key == "digits":
        if data_dir is not None:
            log.info("digits is embedded in scikit-learn; data_dir=%s is ignored", data_dir)
        return _load_digits(seed)
    if key == "cifar10":
        return _load_cifar10(data_dir, allow_pickle)
    raise DataError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}, or your own as "
                    "package.module:factory or path/to/file.py:factory")


def _standardise(train: Tensor, test: Tensor) -> tuple[Tensor, Tensor, tuple, tuple]:
    """Per-channel standardisation of NCHW float tensors with the training split's statistics."""
    std, mean = torch.std_mean(train, dim=(0, 2, 3), correction=0, keepdim=True)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return ((train - mean) / std, (test - mean) / std,
            tuple(mean.flatten().tolist()), tuple(std.flatten().tolist()))


def _splits(name: str, x_train: Tensor, y_train: np.ndarray, x_test: Tensor, y_test: np.ndarray,
            classes: Sequence[str]) -> DatasetSplits:
    """Standardise NCHW float32 images in [0, 1] and wrap them with their labels."""
    train_images, test_images, mean, std = _standardise(x_train, x_test)
    train = TensorDataset(train_images, torch.as_tensor(np.asarray(y_train, dtype=np.int64)))
    test = TensorDataset(test_images, torch.as_tensor(np.asarray(y_test, dtype=np.int64)))
    return DatasetSplits(train=train, test=test, num_classes=len(classes), input_shape=tuple(x_train.shape[1:]),
                         classes=list(classes), name=name, mean=mean, std=std)


def _load_digits(seed: int) -> DatasetSplits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
    labels = digits.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=seed
    )
    classes = [str(c) for c in digits.target_names]
    return _splits("digits", torch.from_numpy(x_train), y_train, torch.from_numpy(x_test), y_test, classes)


def _load_cifar10(data_dir: str | Path | None, allow_pickle: bool = False) -> DatasetSplits:
    if data_dir is None:
        raise DataError(
            "cifar10 needs data_dir (--data-dir): a .npz with x_train, y_train, x_test, y_test, or a directory "
            "holding one or the CIFAR-10 python batches; hwqnn never downloads data"
        )
    path = Path(data_dir).expanduser()
    if not path.exists():
        raise DataError(f"cifar10 data_dir {str(path)!r} does not exist; pass an existing .npz file or directory")
    if path.is_file():
        x_train, y_train, x_test, y_test, classes = _read_npz(path)
    else:
        x_train, y_train, x_test, y_test, classes = _read_cifar_dir(path, allow_pickle)
    for split, images in (("train", x_train), ("test", x_test)):
        if len(images) == 0:
            raise DataError(f"cifar10 data in {str(path)!r} holds no {split} images; both splits need at least one")
    for split, labels in (("train", y_train), ("test", y_test)):
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(f"cifar10 {split} labels span {labels.min()}..{labels.max()}, but there are "
                            f"{len(classes)} classes; expected labels in 0..{len(classes) - 1}")
    to_nchw = lambda x: torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255.0).contiguous()  # noqa: E731
    return _splits("cifar10", to_nchw(x_train), y_train, to_nchw(x_test), y_test, classes)


def _read_npz(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Arrays of a CIFAR-style .npz: uint8 NHWC images with 3 channels, int labels, optional ``classes``."""
    try:
        with _open_npz(path) as archive:
            missing = [k for k in NPZ_KEYS if k not in archive.files]
            if missing:
                raise DataError(f"{path} lacks key(s) {missing}; found {sorted(archive.files)}; expected "
                                f"{list(NPZ_KEYS)} (uint8 NHWC images and integer labels)")
            arrays = [archive[k] for k in NPZ_KEYS]
            classes = [str(c) for c in archive["classes"]] if "classes" in archive.files else list(CIFAR10_CLASSES)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        reason = "the file is empty" if isinstance(exc, EOFError) else str(exc)
        raise DataError(f"cannot read {path} as a .npz archive ({reason}); pass a numpy .npz file without "
                        "object arrays") from exc
    for split in ("train", "test"):
        images, labels = arrays[NPZ_KEYS.index(f"x_{split}")], arrays[NPZ_KEYS.index(f"y_{split}")]
        if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels) or labels.ndim != 1:
            raise DataError(f"{path}: x_{split} has shape {images.shape} and y_{split} {labels.shape}; expected "
                            "(N, H, W, 3) images and (N,) labels")
        if images.dtype != np.uint8:
            raise DataError(f"{path}: x_{split} has dtype {images.dtype}; expected uint8 pixels in 0..255 "
                            "(convert with (x * 255).round().astype(numpy.uint8) if they are in [0, 1])")
    return arrays[0], arrays[1], arrays[2], arrays[3], classes


def _open_npz(path: Path):
    """``np.load`` that never unpickles and only accepts an archive (``.npz``), not a single array."""
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"it holds a single {type(loaded).__name__}, not a .npz archive of named arrays")
    return loaded


def _has_npz_keys(path: Path) -> bool:
    try:
        with _open_npz(path) as archive:
            return all(k in archive.files for k in NPZ_KEYS)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile):
        return False


def _read_cifar_dir(path: Path, allow_pickle: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Prefer a cifar10*.npz, then any .npz with the right keys, then python batches (here or in
    ``cifar-10-batches-py/``, only with ``allow_pickle``)."""
    npz_files = sorted(path.glob("*.npz"), key=lambda p: (not p.name.lower().startswith("cifar10"), p.name))
    for candidate in npz_files:
        if candidate.is_file() and _has_npz_keys(candidate):
            return _read_npz(candidate)
    for batch_dir in (path, path / CIFAR_BATCH_DIR):
        if (batch_dir / "test_batch").is_file() and sorted(batch_dir.glob("data_batch_*")):
            if not allow_pickle:
                raise DataError(
                    f"{str(batch_dir)!r} holds the CIFAR-10 python batches, which are pickles (a crafted one can "
                    "run code); pass --allow-pickle (allow_pickle=True) to read them with a restricted unpickler, "
                    f"or convert them once to a .npz with keys {list(NPZ_KEYS)}"
                )
            log.warning("reading pickled CIFAR-10 batches from %s (--allow-pickle): only plain containers and "
                        "numpy arrays are unpickled", batch_dir)
            return _read_python_batches(batch_dir)
    found = sorted(p.name for p in path.iterdir())[:10]
    raise DataError(
        f"no CIFAR-10 data in directory {str(path)!r} (contains: {found}); expected a .npz with keys "
        f"{list(NPZ_KEYS)} or the python batches data_batch_1..5 and test_batch"
    )


_NUMPY_RECONSTRUCT = np.zeros(1).__reduce__()[0]  # how numpy pickles an array, whatever its version
_NUMPY_FROMBUFFER = np.zeros(1).__reduce_ex__(5)[0]  # the same with pickle protocol 5


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers, numbers, strings and numpy arrays, and refuses every other global,
    so a crafted file cannot call a function (``os.system``, ``eval``...) while it is read."""

    _BUILTINS = {t.__name__: t for t in (dict, list, tuple, set, frozenset, bytes, bytearray, str, int, float,
                                         complex, bool)}
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
        ("numpy._core.multiarray", "_reconstruct"): _NUMPY_RECONSTRUCT,
        ("numpy.core.numeric", "_frombuffer"): _NUMPY_FROMBUFFER,
        ("numpy._core.numeric", "_frombuffer"): _NUMPY_FROMBUFFER,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how protocol 2 writes bytes
    }

    def find_class(self, module: str, name: str):
        if module in ("builtins", "__builtin__") and name in self._BUILTINS:
            return self._BUILTINS[name]
        if (module, name) in self._ALLOWED:
            return self._ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name} (only containers and numpy "
                                     "arrays are allowed in a CIFAR-10 batch)")


def _unpickle(file: Path, keys: tuple[bytes, ...]) -> dict:
    """A dict from one file of the official python version, read with :class:`_ArrayUnpickler`."""
    try:
        content = _ArrayUnpickler(io.BytesIO(file.read_bytes()), encoding="bytes").load()
        if not isinstance(content, dict):
            raise TypeError(f"the file holds a {type(content).__name__}, not a dict")
        return {key: content[key] for key in keys}
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError, AttributeError,
            IndexError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read CIFAR-10 file {file} ({type(exc).__name__}: {exc}); expected a pickled "
                        f"dict with keys {list(keys)} as in the official python version") from exc


def _read_batch(file: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 python batch: rows of 3072 uint8 (R, G, B planes of 32x32) -> NHWC, and labels."""
    batch = _unpickle(file, (b"data", b"labels"))
    try:
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError) as exc:
        raise DataError(f"CIFAR-10 batch {file} holds data or labels that are not integer arrays ({exc})") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or labels.shape != (len(data),):
        raise DataError(f"CIFAR-10 batch {file} holds data of shape {data.shape} and labels of shape "
                        f"{labels.shape}; expected (N, 3072) and (N,)")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def _read_python_batches(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    train_parts = [_read_batch(f) for f in sorted(path.glob("data_batch_*"))]
    x_test, y_test = _read_batch(path / "test_batch")
    classes = list(CIFAR10_CLASSES)
    meta = path / "batches.meta"
    if meta.is_file():
        names = _unpickle(meta, (b"label_names",))[b"label_names"]
        classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    x_train = np.concatenate([x for x, _ in train_parts])
    y_train = np.concatenate([y for _, y in train_parts])
    return x_train, y_train, x_test, y_test, classes


# --- splitting and batching -----------------------------------------------------------------------
def split_train_val(dataset: TensorDataset, val_fraction: float = 0.2,
                    seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Deterministic split of a (images, labels) TensorDataset, stratified by label where every class has
    at least two examples (DNAS updates weights on one part and architecture parameters on the other)."""
    from sklearn.model_selection import train_test_split

    if not 0.0 < val_fraction < 1.0:
        raise DataError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    if not isinstance(dataset, TensorDataset) or len(dataset.tensors) < 2:
        raise DataError(f"split_train_val expects a TensorDataset of (inputs, labels), got {type(dataset).__name__}")
    labels = dataset.tensors[1].numpy()
    counts = np.unique(labels, return_counts=True)[1]
    n_val = round(len(dataset) * val_fraction)
    if not 0 < n_val < len(dataset):
        raise DataError(f"val_fraction={val_fraction} of {len(dataset)} examples leaves one part empty; "
                        "use a larger data set or another fraction")
    can_stratify = counts.min() >= 2 and min(n_val, len(dataset) - n_val) >= len(counts)
    stratify = labels if can_stratify else None
    train_idx, val_idx = train_test_split(np.arange(len(dataset)), test_size=n_val, stratify=stratify,
                                          random_state=seed)
    pick = lambda idx: TensorDataset(*(t[torch.from_numpy(np.sort(idx))] for t in dataset.tensors))  # noqa: E731
    return pick(train_idx), pick(val_idx)


def fixed_indices(size: int, count: int, seed: int = 0) -> Tensor:
    """``count`` distinct indices below ``size`` in a seeded random order (all of them when ``count >= size``)."""
    return torch.randperm(size, generator=torch.Generator().manual_seed(seed))[:count]


def fixed_sample(dataset, count: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """``count`` examples drawn at random from ``dataset`` (seeded, so every call gives the same ones), as
    stacked (inputs, labels); all of them when it holds fewer.

    Calibration, BatchNorm recalibration and Hessian traces take this sample, never the first examples:
    CIFAR-10's files (and the splits, which keep file order) are sorted by class, so the first few hundred
    images are all one class.
    """
    pairs = [dataset[i] for i in fixed_indices(len(dataset), count, seed).tolist()]
    return torch.stack([p[0] for p in pairs]), torch.as_tensor([int(p[1]) for p in pairs])


def random_crop_flip(images: Tensor, generator: torch.Generator, padding: int = CROP_PADDING) -> Tensor:
    """Per image: a random crop of the zero-padded image (same size) and a horizontal flip half the time.

    Vectorised over the batch (two gathers: rows, then columns) instead of a Python loop over images.
    """
    batch, channels, height, width = images.shape
    padded = F.pad(images, (padding, padding, padding, padding))
    top = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (batch,), generator=generator)
    rows = (top[:, None] + torch.arange(height)).view(batch, 1, height, 1)
    cropped = padded.gather(2, rows.expand(batch, channels, height, width + 2 * padding))
    cols = (left[:, None] + torch.arange(width)).view(batch, 1, 1, width)
    cropped = cropped.gather(3, cols.expand(batch, channels, height, width))
    flip = torch.rand(batch, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], cropped.flip(-1), cropped)


def _augmenting_collate(generator: torch.Generator) -> Callable[[list[tuple[Tensor, ...]]], list[Tensor]]:
    def collate(samples: list[tuple[Tensor, ...]]) -> list[Tensor]:
        images, *rest = (torch.stack(column) for column in zip(*samples))
        return [random_crop_flip(images, generator), *rest]

    return collate


def make_loader(dataset: TensorDataset, batch_size: int, *, train: bool, augment: bool = False,
                seed: int = 0) -> DataLoader:
    """A single-process DataLoader: shuffled when ``train``, augmented (random crop with 4-pixel padding
    and horizontal flip, meant for natural images such as CIFAR-10, not digits) when ``augment``.

    Shuffling and augmentation draw from one generator seeded with ``seed``, so two loaders built with
    the same seed yield the same sequence of batches, epoch after epoch.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DataError(f"batch_size must be a positive int, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed)
    collate = _augmenting_collate(generator) if augment else None
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, num_workers=0, generator=generator,
                      collate_fn=collate)
