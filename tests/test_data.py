"""minigrad.data: the DataLoader, the built-in data sets, IDX/MNIST files and preprocessing."""

from __future__ import annotations

import gzip
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minigrad import ShapeError
from minigrad.data import (
    DataLoader,
    Standardizer,
    load_digits,
    load_mnist,
    make_blobs,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
    one_hot,
    read_idx,
    train_test_split,
)

MNIST_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def epoch(loader):
    """One pass over a labelled loader: the list of (x_batch, y_batch)."""
    return [(xb.copy(), yb.copy()) for xb, yb in loader]


def labels_of(batches):
    """The y values of one epoch, concatenated in the order they came."""
    return np.concatenate([yb for _, yb in batches]).tolist()


# --------------------------------------------------------------------------------------------
# DataLoader
# --------------------------------------------------------------------------------------------


@given(
    n=st.integers(1, 60),
    batch_size=st.integers(1, 70),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_loader_batches_cover_every_sample_once(n, batch_size, drop_last, shuffle, seed):
    x = np.arange(n * 3).reshape(n, 3)
    y = np.arange(n)
    loader = DataLoader(
        x, y, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed
    )

    full, rest = divmod(n, batch_size)
    expected_len = full if drop_last or rest == 0 else full + 1
    assert len(loader) == expected_len

    batches = list(loader)
    assert len(batches) == expected_len
    sizes = [len(yb) for _, yb in batches]
    if drop_last:
        assert sizes == [batch_size] * full
    else:
        assert sizes == [batch_size] * full + ([rest] if rest else [])
    for xb, yb in batches:
        assert xb.shape == (len(yb), 3)
        np.testing.assert_array_equal(xb[:, 0], 3 * yb)  # rows stay paired with their labels

    seen = labels_of(batches) if batches else []
    assert len(seen) == len(set(seen)) == (full * batch_size if drop_last else n)
    if not drop_last:
        assert sorted(seen) == list(range(n))
    if not shuffle:
        assert seen == list(range(len(seen)))


@pytest.mark.parametrize("shuffle", [False, True])
def test_loader_each_epoch_is_a_permutation(shuffle):
    loader = DataLoader(np.arange(23) * 2, np.arange(23), batch_size=5, shuffle=shuffle, seed=3)
    for _ in range(3):
        batches = epoch(loader)
        assert [len(yb) for _, yb in batches] == [5, 5, 5, 5, 3]
        assert sorted(labels_of(batches)) == list(range(23))
        for xb, yb in batches:
            np.testing.assert_array_equal(xb, 2 * yb)


def test_loader_last_short_batch_and_drop_last():
    x, y = np.arange(10).reshape(5, 2), np.arange(5)
    kept = DataLoader(x, y, batch_size=2, shuffle=False)
    dropped = DataLoader(x, y, batch_size=2, shuffle=False, drop_last=True)
    assert len(kept) == 3
    assert len(dropped) == 2
    assert [yb.tolist() for _, yb in kept] == [[0, 1], [2, 3], [4]]
    assert [yb.tolist() for _, yb in dropped] == [[0, 1], [2, 3]]


def test_loader_drop_last_with_fewer_samples_than_a_batch_yields_nothing():
    loader = DataLoader(np.zeros((3, 2)), np.zeros(3), batch_size=4, drop_last=True, seed=0)
    assert len(loader) == 0
    assert list(loader) == []
    assert len(DataLoader(np.zeros((3, 2)), np.zeros(3), batch_size=4, seed=0)) == 1


def test_loader_exact_multiple_has_no_short_batch():
    loader = DataLoader(np.arange(12), np.arange(12), batch_size=4, shuffle=False)
    assert len(loader) == 3
    assert [len(yb) for _, yb in loader] == [4, 4, 4]


def test_loader_same_seed_gives_same_batches():
    x, y = np.arange(40).reshape(20, 2), np.arange(20)
    first = DataLoader(x, y, batch_size=6, seed=42)
    second = DataLoader(x, y, batch_size=6, seed=42)
    for _ in range(3):  # the same sequence of epochs, not only the first
        a, b = epoch(first), epoch(second)
        assert len(a) == len(b) == 4
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)


def test_loader_different_seeds_give_different_orders():
    x = np.arange(50)
    a = labels_of(epoch(DataLoader(x, x, batch_size=7, seed=1)))
    b = labels_of(epoch(DataLoader(x, x, batch_size=7, seed=2)))
    assert sorted(a) == sorted(b) == list(range(50))
    assert a != b


def test_loader_epochs_are_shuffled_differently():
    loader = DataLoader(np.arange(50), np.arange(50), batch_size=8, seed=0)
    orders = [labels_of(epoch(loader)) for _ in range(3)]
    assert all(sorted(order) == list(range(50)) for order in orders)
    assert orders[0] != orders[1]
    assert orders[1] != orders[2]
    assert orders[0] != list(range(50))  # it does shuffle


def test_loader_accepts_a_generator_as_seed():
    x = np.arange(30)
    from_int = DataLoader(x, x, batch_size=4, seed=7)
    from_generator = DataLoader(x, x, batch_size=4, seed=np.random.default_rng(7))
    for _ in range(2):
        a, b = labels_of(epoch(from_int)), labels_of(epoch(from_generator))
        assert sorted(b) == list(range(30))
        assert a == b


def test_loader_without_seed_still_yields_permutations():
    loader = DataLoader(np.arange(17), np.arange(17), batch_size=5)
    assert sorted(labels_of(epoch(loader))) == list(range(17))


def test_loader_without_shuffle_yields_views_in_order():
    x = np.arange(21, dtype=np.float32).reshape(7, 3)
    y = np.arange(7)
    loader = DataLoader(x, y, batch_size=3, shuffle=False)
    assert np.shares_memory(loader.x, x)  # the data set itself is not copied
    batches = list(loader)
    for xb, yb in batches:
        assert np.shares_memory(xb, x)
        assert np.shares_memory(yb, y)
    np.testing.assert_array_equal(np.concatenate([xb for xb, _ in batches]), x)
    np.testing.assert_array_equal(np.concatenate([yb for _, yb in batches]), y)
    assert [yb.tolist() for _, yb in batches] == [[0, 1, 2], [3, 4, 5], [6]]


def test_loader_without_labels_yields_x_batches_only():
    x = np.arange(14).reshape(7, 2)
    batches = list(DataLoader(x, batch_size=3, shuffle=False))
    assert len(batches) == 3
    for batch in batches:
        assert isinstance(batch, np.ndarray)
        assert batch.ndim == 2
        assert batch.shape[1] == 2
    np.testing.assert_array_equal(np.concatenate(batches), x)

    shuffled = list(DataLoader(x, None, batch_size=3, seed=0))
    assert all(isinstance(batch, np.ndarray) for batch in shuffled)
    rows = np.concatenate(shuffled)
    assert sorted(rows[:, 0].tolist()) == x[:, 0].tolist()


def test_loader_accepts_lists():
    loader = DataLoader([[1, 2], [3, 4], [5, 6]], [0, 1, 0], batch_size=2, shuffle=False)
    (x0, y0), (x1, y1) = loader
    assert x0.tolist() == [[1, 2], [3, 4]]
    assert y0.tolist() == [0, 1]
    assert x1.tolist() == [[5, 6]]
    assert y1.tolist() == [0]


def test_loader_accepts_numpy_integer_batch_size():
    loader = DataLoader(np.arange(5), np.arange(5), batch_size=np.int64(2), shuffle=False)
    assert loader.batch_size == 2
    assert isinstance(loader.batch_size, int)
    assert len(loader) == 3


def test_loader_repr():
    loader = DataLoader(np.zeros((5, 2)), batch_size=2, shuffle=False, drop_last=True)
    assert repr(loader) == "DataLoader(samples=5, batch_size=2, shuffle=False, drop_last=True)"


def test_loader_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same number of samples: x has 5 rows, y has 4 rows"):
        DataLoader(np.zeros((5, 2)), np.zeros(4))
    with pytest.raises(
        ShapeError, match=r"DataLoader: y must be an array of samples, got a scalar"
    ):
        DataLoader(np.zeros((3, 2)), 1)


def test_loader_rejects_empty_data():
    with pytest.raises(ValueError, match="empty data set"):
        DataLoader(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ValueError, match="empty"):
        DataLoader([])


@pytest.mark.parametrize("x", [3.0, np.float32(1.5), np.array(7)])
def test_loader_rejects_a_scalar_x(x):
    with pytest.raises(ValueError, match="scalar"):
        DataLoader(x)


@pytest.mark.parametrize("batch_size", [0, -1, -32])
def test_loader_rejects_batch_size_below_one(batch_size):
    with pytest.raises(ValueError, match=rf"batch_size must be >= 1, got {batch_size}"):
        DataLoader(np.zeros((4, 2)), batch_size=batch_size)


@pytest.mark.parametrize("batch_size", [2.0, 2.5, "2", None, True, np.float64(4)])
def test_loader_rejects_non_integer_batch_size(batch_size):
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        DataLoader(np.zeros((4, 2)), batch_size=batch_size)


# --------------------------------------------------------------------------------------------
# Built-in data sets
# --------------------------------------------------------------------------------------------

MAKERS = {
    "xor": (make_xor, {}, 2),
    "spirals": (make_spirals, {}, 2),
    "spirals3": (make_spirals, {"classes": 3}, 3),
    "moons": (make_moons, {}, 2),
    "circles": (make_circles, {}, 2),
    "blobs": (make_blobs, {}, 3),
    "blobs5": (make_blobs, {"centers": 5, "features": 4}, 5),
}


def features_of(kwargs):
    return kwargs.get("features", 2)


@pytest.mark.parametrize("name", MAKERS)
@pytest.mark.parametrize("n", [12, 31, 100])
def test_dataset_shapes_dtypes_and_balance(name, n):
    make, kwargs, classes = MAKERS[name]
    x, y = make(n, seed=0, **kwargs)
    assert x.shape == (n, features_of(kwargs))
    assert x.dtype == np.float32
    assert y.shape == (n,)
    assert y.dtype == np.int64
    assert np.all(np.isfinite(x))
    counts = np.bincount(y, minlength=classes)
    assert len(counts) == classes  # labels are 0..classes-1
    assert counts.min() >= 1
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize(
    ("make", "n"),
    [
        (make_xor, 4),
        (make_spirals, 1000),
        (make_moons, 200),
        (make_circles, 200),
        (make_blobs, 300),
    ],
)
def test_dataset_default_sizes(make, n):
    x, y = make(seed=0)
    assert x.shape == (n, 2)
    assert y.shape == (n,)


@pytest.mark.parametrize("name", MAKERS)
def test_dataset_determinism_by_seed(name):
    make, kwargs, _ = MAKERS[name]
    if make is make_xor:
        kwargs = {"noise": 0.1}
    x1, y1 = make(40, seed=123, **kwargs)
    x2, y2 = make(40, seed=123, **kwargs)
    x3, _ = make(40, seed=124, **kwargs)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


def test_dataset_accepts_a_generator_as_seed():
    x1, y1 = make_moons(30, seed=np.random.default_rng(5))
    x2, y2 = make_moons(30, seed=5)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)


def test_split_gives_the_extra_samples_to_the_first_classes():
    _, y = make_spirals(8, classes=3, seed=0)
    assert np.bincount(y).tolist() == [3, 3, 2]
    _, y = make_blobs(7, centers=3, seed=0)
    assert np.bincount(y).tolist() == [3, 2, 2]


def test_xor_default_is_the_truth_table():
    x, y = make_xor()
    assert x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(x, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1, 1, 0])


def test_xor_repeats_the_corners_and_adds_noise():
    x, y = make_xor(10)
    table = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    np.testing.assert_array_equal(x, table[np.arange(10) % 4])
    np.testing.assert_array_equal(y, [0, 1, 1, 0] * 2 + [0, 1])

    noisy, labels = make_xor(400, noise=0.1, seed=0)
    clean = table[np.arange(400) % 4]
    np.testing.assert_array_equal(labels, [0, 1, 1, 0] * 100)
    offsets = noisy - clean
    assert 0.08 < offsets.std() < 0.12
    assert abs(offsets.mean()) < 0.02


def test_circles_radii_without_noise():
    x, y = make_circles(101, noise=0.0, factor=0.3, seed=0)
    radius = np.linalg.norm(x.astype(np.float64), axis=1)
    np.testing.assert_allclose(radius[y == 0], 1.0, rtol=1e-6)
    np.testing.assert_allclose(radius[y == 1], 0.3, rtol=1e-6)
    # angles spread around the whole circle
    angles = np.arctan2(x[:, 1], x[:, 0])
    assert angles.min() < -2.5
    assert angles.max() > 2.5


def test_circles_default_factor_is_one_half():
    x, y = make_circles(40, noise=0.0, seed=1)
    radius = np.linalg.norm(x, axis=1)
    np.testing.assert_allclose(radius[y == 1], 0.5, rtol=1e-6)


def test_moons_geometry_without_noise():
    x, y = make_moons(201, noise=0.0, seed=0)
    x = x.astype(np.float64)
    upper, lower = x[y == 0], x[y == 1]
    # class 0: upper half of the unit circle around (0, 0)
    np.testing.assert_allclose(np.linalg.norm(upper, axis=1), 1.0, rtol=1e-6)
    assert np.all(upper[:, 1] >= -1e-7)
    # class 1: lower half of the unit circle around (1, 0.5)
    np.testing.assert_allclose(np.linalg.norm(lower - [1.0, 0.5], axis=1), 1.0, rtol=1e-6)
    assert np.all(lower[:, 1] <= 0.5 + 1e-7)
    assert np.all((x[:, 0] >= -1 - 1e-7) & (x[:, 0] <= 2 + 1e-7))


def test_blobs_without_spread_are_their_centres():
    x, y = make_blobs(60, centers=4, features=3, spread=0.0, box=5.0, seed=3)
    centres = np.array([x[y == k][0] for k in range(4)])
    for k in range(4):
        np.testing.assert_array_equal(x[y == k], np.broadcast_to(centres[k], (15, 3)))
    assert np.all(np.abs(centres) <= 5.0)
    assert len(np.unique(centres, axis=0)) == 4


def test_blobs_points_lie_near_their_centres():
    spread = 0.2
    x, y = make_blobs(3000, centers=3, features=2, spread=spread, box=10.0, seed=0)
    centres, _ = make_blobs(3, centers=3, features=2, spread=0.0, box=10.0, seed=0)
    # the same seed draws the same centres; class k's points scatter around centre k
    for k in range(3):
        offsets = x[y == k] - centres[k]
        assert np.abs(offsets.mean(axis=0)).max() < 0.03
        np.testing.assert_allclose(offsets.std(axis=0), spread, rtol=0.1)
        assert np.linalg.norm(offsets, axis=1).max() < 6 * spread
        nearest = np.argmin(np.linalg.norm(x[y == k][:, None] - centres[None], axis=2), axis=1)
        assert np.mean(nearest == k) > 0.99


def test_spirals_three_arms_without_noise():
    classes, turns = 3, 1.5
    x, y = make_spirals(300, noise=0.0, classes=classes, turns=turns, seed=0)
    assert np.bincount(y).tolist() == [100, 100, 100]
    x = x.astype(np.float64)
    r = np.linalg.norm(x, axis=1)
    assert np.all((r >= 0) & (r <= 1 + 1e-6))
    # point on arm k: angle = t + 2 pi k / classes with t = r * t_max
    t = r * 2 * np.pi * turns
    expected = t + 2 * np.pi * y / classes
    diff = np.angle(np.exp(1j * (np.arctan2(x[:, 1], x[:, 0]) - expected)))
    assert np.abs(diff[r > 1e-3]).max() < 1e-4
    # the arms are rotated copies: their radii cover (0, 1)
    for k in range(classes):
        assert r[y == k].min() < 0.2
        assert r[y == k].max() > 0.9


@pytest.mark.parametrize(
    ("make", "kwargs"),
    [(make_xor, {}), (make_spirals, {}), (make_moons, {}), (make_circles, {}), (make_blobs, {})],
)
@pytest.mark.parametrize("n_samples", [0, -1])
def test_dataset_rejects_too_few_samples(make, kwargs, n_samples):
    with pytest.raises(ValueError, match=rf"n_samples must be >= \d+, got {n_samples}"):
        make(n_samples, **kwargs)


@pytest.mark.parametrize(
    ("make", "kwargs", "n"),
    [
        (make_moons, {}, 1),
        (make_circles, {}, 1),
        (make_spirals, {"classes": 3}, 2),
        (make_blobs, {"centers": 4}, 3),
    ],
)
def test_dataset_needs_a_sample_per_class(make, kwargs, n):
    with pytest.raises(ValueError, match=rf"n_samples must be >= {n + 1}, got {n}"):
        make(n, **kwargs)


@pytest.mark.parametrize("make", [make_xor, make_spirals, make_moons, make_circles, make_blobs])
@pytest.mark.parametrize("n_samples", [4.0, 10.5, "10", True, None])
def test_dataset_rejects_non_integer_n_samples(make, n_samples):
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        make(n_samples)


@pytest.mark.parametrize("make", [make_xor, make_spirals, make_moons, make_circles])
@pytest.mark.parametrize("noise", [-0.1, float("nan"), float("inf")])
def test_dataset_rejects_bad_noise(make, noise):
    with pytest.raises(ValueError, match="noise must be a finite number >= 0"):
        make(20, noise)


@pytest.mark.parametrize("spread", [-1.0, float("nan")])
def test_blobs_rejects_bad_spread(spread):
    with pytest.raises(ValueError, match=">= 0"):
        make_blobs(20, spread=spread)


@pytest.mark.parametrize("factor", [0.0, 1.0, 1.5, -0.5, float("nan")])
def test_circles_rejects_bad_factor(factor):
    with pytest.raises(ValueError, match=r"factor must be a finite number > 0 and < 1"):
        make_circles(20, factor=factor)


@pytest.mark.parametrize("classes", [1, 0, -2])
def test_spirals_rejects_fewer_than_two_classes(classes):
    with pytest.raises(ValueError, match=f"classes must be >= 2, got {classes}"):
        make_spirals(20, classes=classes)


@pytest.mark.parametrize(("centers", "features"), [(0, 2), (-1, 2), (3, 0)])
def test_blobs_rejects_bad_centres_or_features(centers, features):
    with pytest.raises(ValueError, match=r"(centers|features) must be >= 1, got (0|-1)"):
        make_blobs(20, centers=centers, features=features)


def test_load_digits():
    pytest.importorskip("sklearn")
    x, y = load_digits()
    assert x.shape == (1797, 64)
    assert x.dtype == np.float32
    assert y.shape == (1797,)
    assert y.dtype == np.int64
    assert x.min() == 0.0
    assert x.max() == 1.0
    assert sorted(np.unique(y).tolist()) == list(range(10))
    # pixels are multiples of 1/16
    np.testing.assert_allclose(x * 16, np.round(x * 16), atol=1e-5)


def test_load_digits_without_sklearn_explains_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match="needs scikit-learn") as info:
        load_digits()
    assert "pip install" in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__


# --------------------------------------------------------------------------------------------
# IDX files and MNIST
# --------------------------------------------------------------------------------------------

IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array, code=None):
    """An IDX file's bytes for ``array``: header, big-endian sizes, big-endian values."""
    array = np.asarray(array)
    code = IDX_CODES[array.dtype] if code is None else code
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path, array, code=None):
    data = idx_bytes(array, code)
    if str(path).endswith(".gz"):
        with gzip.open(path, "wb") as file:
            file.write(data)
    else:
        Path(path).write_bytes(data)
    return path


def mnist_files(directory, split="train", n=5, rows=4, cols=3, seed=0, gz=False, labels=None):
    """Small fake MNIST files: n images of rows x cols uint8 pixels and their labels."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, rows, cols), dtype=np.uint8)
    if images.size >= 2:
        images.flat[0], images.flat[1] = 0, 255  # the whole range of pixel values
    if labels is None:
        labels = rng.integers(0, 10, n, dtype=np.uint8)
    prefix = {"train": "train", "test": "t10k"}[split]
    ext = ".gz" if gz else ""
    write_idx(directory / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(directory / f"{prefix}-labels-idx1-ubyte{ext}", np.asarray(labels))
    return images, np.asarray(labels)


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_uint8_images_and_labels(tmp_path, gz):
    ext = ".gz" if gz else ""
    images = np.arange(2 * 28 * 28, dtype=np.int64).reshape(2, 28, 28).astype(np.uint8)
    labels = np.array([7, 2, 1], dtype=np.uint8)
    images_path = write_idx(tmp_path / f"images-idx3-ubyte{ext}", images)
    labels_path = write_idx(tmp_path / f"labels-idx1-ubyte{ext}", labels)
    if gz:  # really compressed, not the raw bytes under another name
        assert images_path.read_bytes()[:2] == b"\x1f\x8b"

    read_images, read_labels = read_idx(images_path), read_idx(str(labels_path))
    assert read_images.shape == (2, 28, 28)
    assert read_images.dtype == np.uint8
    np.testing.assert_array_equal(read_images, images)
    assert read_labels.shape == (3,)
    assert read_labels.dtype == np.uint8
    assert read_labels.tolist() == [7, 2, 1]


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.float32, np.float64])
def test_read_idx_wider_types_come_back_in_native_byte_order(tmp_path, dtype, gz):
    values = np.array([[-3, 0, 1], [1000, -70000, 2**20]], dtype=np.float64) / 2
    if np.issubdtype(dtype, np.integer):
        values = np.array([[-3, 0, 1], [100, -128, 127]])
        if dtype is not np.int8:
            values = values * 257
    array = values.astype(dtype)
    path = write_idx(tmp_path / ("values.idx" + (".gz" if gz else "")), array)
    result = read_idx(path)
    assert result.dtype == np.dtype(dtype)
    assert result.dtype.isnative
    assert result.shape == (2, 3)
    np.testing.assert_array_equal(result, array)
    assert result.flags.writeable


def test_read_idx_float32_big_endian_bytes(tmp_path):
    values = np.array([1.5, -2.25, 3.0e-7, 65504.0], dtype=np.float32)
    path = tmp_path / "floats.idx"
    path.write_bytes(
        bytes([0, 0, 0x0D, 1]) + (4).to_bytes(4, "big") + values.astype(">f4").tobytes()
    )
    result = read_idx(path)
    assert result.dtype == np.float32
    assert result.dtype.isnative
    np.testing.assert_array_equal(result, values)


def test_read_idx_int32_big_endian_bytes(tmp_path):
    path = tmp_path / "ints.idx"
    sizes = (2).to_bytes(4, "big") + (2).to_bytes(4, "big")
    values = b"".join(v.to_bytes(4, "big", signed=True) for v in (1, -1, 2**31 - 1, -(2**31)))
    path.write_bytes(bytes([0, 0, 0x0C, 2]) + sizes + values)
    result = read_idx(path)
    assert result.dtype == np.int32
    assert result.dtype.isnative
    assert result.tolist() == [[1, -1], [2**31 - 1, -(2**31)]]


def test_read_idx_zero_length_array(tmp_path):
    path = write_idx(tmp_path / "empty.idx", np.zeros((0, 5), dtype=np.uint8))
    result = read_idx(path)
    assert result.shape == (0, 5)
    assert result.dtype == np.uint8


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\x00\x00\x08",
        b"\x01\x00\x08\x01\x00\x00\x00\x01\x05",
        b"\x00\x01\x08\x01\x00\x00\x00\x01\x05",
        b"\x1f\x8b\x08\x00",
    ],
)
def test_read_idx_rejects_bad_magic(tmp_path, data):
    path = tmp_path / "bad.idx"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*not an IDX file"):
        read_idx(path)


@pytest.mark.parametrize("code", [0x00, 0x07, 0x0A, 0x0F, 0xFF])
def test_read_idx_rejects_unknown_type_code(tmp_path, code):
    path = tmp_path / "bad.idx"
    path.write_bytes(bytes([0, 0, code, 1]) + (1).to_bytes(4, "big") + b"\x05")
    with pytest.raises(ValueError, match=re.escape(str(path)) + f".*type 0x{code:02X}"):
        read_idx(path)


@pytest.mark.parametrize("sizes_given", [0, 1, 2])
def test_read_idx_rejects_truncated_header(tmp_path, sizes_given):
    path = tmp_path / "short.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + b"\x00\x00\x00\x02" * sizes_given + b"\x00\x00")
    with pytest.raises(ValueError, match=re.escape(str(path)) + ".*promises 3 sizes"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("extra", [-1, -6, 1, 4])
def test_read_idx_rejects_wrong_payload_size(tmp_path, extra, gz):
    data = idx_bytes(np.arange(6, dtype=np.int16).reshape(2, 3))
    data = data[:extra] if extra < 0 else data + b"\x00" * extra
    path = tmp_path / ("sized.idx" + (".gz" if gz else ""))
    if gz:
        with gzip.open(path, "wb") as file:
            file.write(data)
    else:
        path.write_bytes(data)
    holds = 12 + extra
    message = re.escape(str(path)) + rf".*needs 12 bytes of values, the file holds {holds}"
    with pytest.raises(ValueError, match=message):
        read_idx(path)


@pytest.mark.parametrize("split", ["train", "test"])
@pytest.mark.parametrize("gz", [False, True])
def test_load_mnist_defaults_flatten_and_scale(tmp_path, split, gz):
    images, labels = mnist_files(tmp_path, split, n=6, rows=4, cols=3, gz=gz)
    x, y = load_mnist(tmp_path, split)
    assert x.shape == (6, 12)
    assert x.dtype == np.float32
    assert x.min() == 0.0
    assert x.max() == 1.0
    np.testing.assert_allclose(x, images.reshape(6, 12) / 255.0, rtol=1e-6)
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_default_split_is_train(tmp_path):
    _, labels = mnist_files(tmp_path, "train", n=4, seed=1)
    mnist_files(tmp_path, "test", n=3, seed=2)
    _, y = load_mnist(str(tmp_path))
    np.testing.assert_array_equal(y, labels)


def test_load_mnist_reads_the_split_it_is_asked_for(tmp_path):
    _, train_labels = mnist_files(tmp_path, "train", n=7, seed=1)
    test_images, test_labels = mnist_files(tmp_path, "test", n=3, seed=2)
    x_train, y_train = load_mnist(tmp_path, "train")
    x_test, y_test = load_mnist(tmp_path, "test", flatten=False, scale=False)
    assert len(x_train) == 7
    np.testing.assert_array_equal(y_train, train_labels)
    np.testing.assert_array_equal(x_test, test_images)
    np.testing.assert_array_equal(y_test, test_labels)


def test_load_mnist_raw_pixels(tmp_path):
    images, labels = mnist_files(tmp_path, "test", n=5, rows=4, cols=3)
    x, y = load_mnist(tmp_path, "test", flatten=False, scale=False)
    np.testing.assert_array_equal(y, labels)
    assert x.shape == (5, 4, 3)
    assert x.dtype == np.uint8
    np.testing.assert_array_equal(x, images)
    assert y.dtype == np.int64

    flat_raw, _ = load_mnist(tmp_path, "test", scale=False)
    assert flat_raw.shape == (5, 12)
    assert flat_raw.dtype == np.uint8
    np.testing.assert_array_equal(flat_raw, images.reshape(5, 12))

    scaled_images, _ = load_mnist(tmp_path, "test", flatten=False)
    assert scaled_images.shape == (5, 4, 3)
    assert scaled_images.dtype == np.float32
    np.testing.assert_allclose(scaled_images, images / 255.0, rtol=1e-6)


def test_load_mnist_accepts_dotted_file_names(tmp_path):
    images = np.full((2, 2, 2), 51, dtype=np.uint8)
    write_idx(tmp_path / "t10k-images.idx3-ubyte", images)
    write_idx(tmp_path / "t10k-labels.idx1-ubyte", np.array([3, 4], dtype=np.uint8))
    x, y = load_mnist(tmp_path, "test")
    np.testing.assert_allclose(x, 0.2, rtol=1e-6)
    assert y.tolist() == [3, 4]


def test_load_mnist_rejects_mismatched_counts(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(2, dtype=np.uint8))
    with pytest.raises(ValueError, match=r"do not fit together: images \(3, 2, 2\), labels \(2,\)"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_files_of_the_wrong_rank(tmp_path):
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 4), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(ValueError, match="do not fit together"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((3, 2, 2), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros((3, 1), dtype=np.uint8))
    with pytest.raises(ValueError, match="do not fit together"):
        load_mnist(tmp_path)


def test_load_mnist_rejects_labels_that_are_not_digits(tmp_path):
    mnist_files(tmp_path, "train", n=3, labels=np.array([1, 10, 2], dtype=np.uint8))
    with pytest.raises(ValueError, match="digits 0-9, got 1 to 10"):
        load_mnist(tmp_path)
    mnist_files(tmp_path, "test", n=2, labels=np.array([-1, 3], dtype=np.int8))
    with pytest.raises(ValueError, match="digits 0-9, got -1 to 3"):
        load_mnist(tmp_path, "test")


def test_load_mnist_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_mnist(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 2, 2), dtype=np.uint8))
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        load_mnist(tmp_path)
    mnist_files(tmp_path, "train")  # the train files do not stand in for the test files
    with pytest.raises(FileNotFoundError, match="t10k-images-idx3-ubyte"):
        load_mnist(tmp_path, "test")


@pytest.mark.parametrize("split", ["validation", "t10k", "Train", ""])
def test_load_mnist_rejects_unknown_split(tmp_path, split):
    mnist_files(tmp_path, "train")
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        load_mnist(tmp_path, split)


def test_load_mnist_empty_split_flattens(tmp_path):
    mnist_files(tmp_path, "test", n=0, rows=28, cols=28, labels=np.zeros(0, dtype=np.uint8))
    x, y = load_mnist(tmp_path, "test")
    assert x.shape == (0, 784)
    assert y.shape == (0,)


@pytest.fixture(scope="module")
def mnist_test_set():
    if not MNIST_DIR.is_dir():
        pytest.skip(f"no MNIST files in {MNIST_DIR}")
    return load_mnist(MNIST_DIR, "test")


def test_real_mnist_test_set(mnist_test_set):
    x, y = mnist_test_set
    assert x.shape == (10000, 784)
    assert x.dtype == np.float32
    assert x.min() == 0.0
    assert x.max() == 1.0
    assert y.shape == (10000,)
    assert y.dtype == np.int64
    assert sorted(np.unique(y).tolist()) == list(range(10))
    assert np.bincount(y).min() > 800  # every digit well represented
    assert y[0] == 7
    assert y[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]


def test_real_mnist_test_set_raw(mnist_test_set):
    x, _ = mnist_test_set
    raw, y = load_mnist(MNIST_DIR, "test", flatten=False, scale=False)
    assert raw.shape == (10000, 28, 28)
    assert raw.dtype == np.uint8
    np.testing.assert_array_equal(raw.reshape(10000, 784) / np.float32(255), x)
    assert y[0] == 7


# --------------------------------------------------------------------------------------------
# train_test_split
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "test_size", "n_test"),
    [
        (10, 0.2, 2),
        (10, 0.25, 3),  # 2.5 rounds up
        (7, 0.3, 3),  # 2.1 rounds up
        (3, 0.1, 1),  # 0.3 rounds up to one sample
        (100, 0.5, 50),
        (10, 0.3, 3),
        (10, 3, 3),
        (10, 9, 9),
        (10, 1, 1),
        (10, np.int64(4), 4),
        (2, 0.5, 1),
    ],
)
def test_split_sizes(n, test_size, n_test):
    x, y = np.arange(n), np.arange(n) * 10
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size, seed=0)
    assert len(x_test) == len(y_test) == n_test
    assert len(x_train) == len(y_train) == n - n_test


def test_split_default_is_one_fifth():
    x_train, x_test, _, _ = train_test_split(np.arange(20), np.arange(20), seed=0)
    assert len(x_test) == 4
    assert len(x_train) == 16


@given(
    n=st.integers(2, 200),
    fraction=st.floats(0.01, 0.99),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_is_a_paired_partition(n, fraction, seed):
    n_test = math.ceil(fraction * n)
    if not 0 < n_test < n:
        with pytest.raises(ValueError, match="both sets need at least one"):
            train_test_split(np.arange(n), np.arange(n), fraction, seed=seed)
        return
    ids = np.arange(n)
    x = np.stack([ids, -ids], axis=1).astype(np.float32)
    y = ids * 3
    x_train, x_test, y_train, y_test = train_test_split(x, y, fraction, seed=seed)
    assert len(x_test) == n_test
    assert x_train.shape == (n - n_test, 2)
    train_ids, test_ids = x_train[:, 0].astype(int), x_test[:, 0].astype(int)
    assert len(set(train_ids) | set(test_ids)) == n  # complete ...
    assert not set(train_ids) & set(test_ids)  # ... and disjoint
    np.testing.assert_array_equal(y_train, 3 * train_ids)  # pairs kept together
    np.testing.assert_array_equal(y_test, 3 * test_ids)
    np.testing.assert_array_equal(x_train[:, 1], -x_train[:, 0])


def test_split_matches_scikit_learn_sizes():
    sklearn_selection = pytest.importorskip("sklearn.model_selection")
    for n in range(2, 40):
        for fraction in (0.05, 0.1, 0.2, 0.3, 0.33, 0.5, 0.7, 0.9):
            try:
                expected = len(
                    sklearn_selection.train_test_split(np.arange(n), test_size=fraction)[1]
                )
            except ValueError:
                expected = None
            try:
                got = len(train_test_split(np.arange(n), np.arange(n), fraction)[1])
            except ValueError:
                got = None
            assert got == expected, (n, fraction)


def test_split_without_shuffle_takes_the_last_rows():
    x = np.arange(20).reshape(10, 2)
    y = np.arange(10)
    x_train, x_test, y_train, y_test = train_test_split(x, y, 0.3, shuffle=False)
    np.testing.assert_array_equal(x_train, x[:7])
    np.testing.assert_array_equal(x_test, x[7:])
    np.testing.assert_array_equal(y_train, y[:7])
    np.testing.assert_array_equal(y_test, y[7:])
    _, x_test, _, y_test = train_test_split(x, y, 4, shuffle=False, seed=99)
    assert y_test.tolist() == [6, 7, 8, 9]


def test_split_shuffles_and_is_deterministic_by_seed():
    x, y = np.arange(100), np.arange(100)
    a = train_test_split(x, y, 0.2, seed=5)
    b = train_test_split(x, y, 0.2, seed=5)
    c = train_test_split(x, y, 0.2, seed=6)
    for part_a, part_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(part_a, part_b)
    assert not np.array_equal(a[1], c[1])
    assert a[1].tolist() != list(range(80, 100))  # shuffled, not the last rows
    from_generator = train_test_split(x, y, 0.2, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(from_generator[1], a[1])


def test_split_accepts_lists():
    x_train, x_test, y_train, y_test = train_test_split(
        [[1], [2], [3], [4]], ["a", "b", "c", "d"], 1, shuffle=False
    )
    assert x_train.tolist() == [[1], [2], [3]]
    assert x_test.tolist() == [[4]]
    assert y_train.tolist() == ["a", "b", "c"]
    assert y_test.tolist() == ["d"]


@pytest.mark.parametrize("test_size", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_split_rejects_fractions_outside_the_unit_interval(test_size):
    with pytest.raises(ValueError, match=r"fractional test_size must lie in \(0, 1\)"):
        train_test_split(np.arange(10), np.arange(10), test_size)


@pytest.mark.parametrize(
    ("n", "test_size"), [(10, 0), (10, 10), (10, 11), (10, -1), (10, 0.95), (1, 0.5), (1, 1)]
)
def test_split_rejects_an_empty_side(n, test_size):
    with pytest.raises(
        ValueError, match=rf"leaves -?\d+ of {n} samples.*both sets need at least one"
    ):
        train_test_split(np.arange(n), np.arange(n), test_size)


def test_split_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same number of samples, got 5 and 4"):
        train_test_split(np.arange(5), np.arange(4))


def test_split_accepts_a_numpy_float32_fraction():
    _, x_test, _, _ = train_test_split(np.arange(10), np.arange(10), np.float32(0.25), seed=0)
    assert len(x_test) == 3


# --------------------------------------------------------------------------------------------
# Standardizer
# --------------------------------------------------------------------------------------------


def scaled_data(n, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    scales = np.array([1.0, 100.0, 0.01, 5.0])
    shifts = np.array([0.0, -50.0, 3.0, 1000.0])
    return (rng.normal(size=(n, 4)) * scales + shifts).astype(dtype)


def test_standardizer_gives_zero_mean_unit_std_on_the_training_data():
    train = scaled_data(200, 0)
    scaler = Standardizer()
    assert scaler.fit(train) is scaler
    z = scaler.transform(train)
    assert z.dtype == np.float64
    assert z.shape == train.shape
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)
    np.testing.assert_allclose(scaler.mean, train.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(scaler.std, train.std(axis=0), rtol=1e-12)


def test_standardizer_applies_the_training_statistics_to_other_data():
    train, test = scaled_data(200, 0), scaled_data(50, 1) * 2
    scaler = Standardizer().fit(train)
    z = scaler.transform(test)
    np.testing.assert_allclose(z, (test - train.mean(axis=0)) / train.std(axis=0), rtol=1e-12)
    assert np.abs(z.std(axis=0) - 1).max() > 0.1  # the test set's own statistics are not used


def test_standardizer_fit_transform_equals_fit_then_transform():
    train = scaled_data(30, 2)
    np.testing.assert_array_equal(
        Standardizer().fit_transform(train), Standardizer().fit(train).transform(train)
    )


def test_standardizer_does_not_modify_its_input():
    train = scaled_data(30, 3)
    copy = train.copy()
    scaler = Standardizer().fit(train)
    scaler.transform(train)
    scaler.inverse_transform(train)
    np.testing.assert_array_equal(train, copy)


def test_standardizer_constant_feature_is_centred_not_divided_by_zero():
    train = np.array([[0.0, 5.0], [2.0, 5.0], [4.0, 5.0]])
    scaler = Standardizer().fit(train)
    z = scaler.transform(train)
    assert np.all(np.isfinite(z))
    np.testing.assert_array_equal(z[:, 1], 0.0)
    assert scaler.std[1] == 1.0
    np.testing.assert_allclose(scaler.transform([[2.0, 6.0], [2.0, 3.0]])[:, 1], [1.0, -2.0])
    np.testing.assert_allclose(scaler.inverse_transform(z), train, atol=1e-12)


def test_standardizer_keeps_float32():
    train = scaled_data(100, 4, np.float32)
    scaler = Standardizer().fit(train)
    z = scaler.transform(train)
    assert z.dtype == np.float32
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-5)
    back = scaler.inverse_transform(z)
    assert back.dtype == np.float32
    np.testing.assert_allclose(back, train, rtol=1e-5, atol=1e-4)


def test_standardizer_turns_integers_into_float32():
    train = np.array([[1, 10], [3, 20], [5, 60]], dtype=np.int64)
    z = Standardizer().fit_transform(train)
    assert z.dtype == np.float32
    expected = (train - train.mean(axis=0)) / train.std(axis=0)
    np.testing.assert_allclose(z, expected, rtol=1e-6)


def test_standardizer_inverse_transform_round_trip():
    train, test = scaled_data(100, 5), scaled_data(20, 6)
    scaler = Standardizer().fit(train)
    for data in (train, test):
        np.testing.assert_allclose(
            scaler.inverse_transform(scaler.transform(data)), data, rtol=1e-12, atol=1e-9
        )


def test_standardizer_before_fit_raises_runtime_error():
    scaler = Standardizer()
    assert repr(scaler) == "Standardizer(unfitted)"
    with pytest.raises(RuntimeError, match=r"before fit\(\)"):
        scaler.transform(np.zeros((2, 2)))
    with pytest.raises(RuntimeError, match=r"before fit\(\)"):
        scaler.inverse_transform(np.zeros((2, 2)))


def test_standardizer_rejects_the_wrong_number_of_features():
    scaler = Standardizer().fit(np.zeros((4, 3)))
    assert repr(scaler) == "Standardizer(features=3)"
    with pytest.raises(ValueError, match=r"fitted on 3 features, got shape \(4, 2\)"):
        scaler.transform(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"fitted on 3 features, got shape \(3,\)"):
        scaler.transform(np.zeros(3))


@pytest.mark.parametrize("shape", [(5,), (0, 3), (2, 3, 4), ()])
def test_standardizer_fit_rejects_non_matrices(shape):
    with pytest.raises(ValueError, match="non-empty \\(n, features\\) array"):
        Standardizer().fit(np.zeros(shape))


# --------------------------------------------------------------------------------------------
# one_hot
# --------------------------------------------------------------------------------------------


def test_one_hot_values_and_dtype():
    out = one_hot(np.array([2, 0, 1, 2]), classes=3)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])


def test_one_hot_infers_the_number_of_classes():
    out = one_hot([0, 3])
    assert out.shape == (2, 4)
    np.testing.assert_array_equal(out, [[1, 0, 0, 0], [0, 0, 0, 1]])


def test_one_hot_with_more_classes_than_labels_use():
    out = one_hot([1, 1], classes=5)
    assert out.shape == (2, 5)
    np.testing.assert_array_equal(out.sum(axis=0), [0, 2, 0, 0, 0])


@pytest.mark.parametrize("dtype", [np.float64, np.int64, np.uint8, np.bool_])
def test_one_hot_dtype(dtype):
    out = one_hot([0, 2, 1], classes=3, dtype=dtype)
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, np.eye(3, dtype=dtype)[[0, 2, 1]])


@pytest.mark.parametrize("label_dtype", [np.uint8, np.int8, np.int32, np.int64, np.uint64])
def test_one_hot_accepts_every_integer_label_type(label_dtype):
    out = one_hot(np.array([1, 0, 2], dtype=label_dtype))
    np.testing.assert_array_equal(out, np.eye(3)[[1, 0, 2]])


@given(st.lists(st.integers(0, 9), min_size=1, max_size=50))
def test_one_hot_rows_have_a_single_one_at_the_label(labels):
    out = one_hot(np.array(labels), classes=10)
    assert out.shape == (len(labels), 10)
    np.testing.assert_array_equal(out.sum(axis=1), 1.0)
    np.testing.assert_array_equal(out.argmax(axis=1), labels)
    assert set(np.unique(out).tolist()) <= {0.0, 1.0}


def test_one_hot_empty_labels():
    assert one_hot(np.array([], dtype=np.int64)).shape == (0, 0)
    assert one_hot(np.array([], dtype=np.int64), classes=3).shape == (0, 3)


@pytest.mark.parametrize(
    ("labels", "classes", "message"),
    [
        ([0, 3], 3, r"\[0, 3\), got 0 to 3"),
        ([0, 1, 5], 2, r"\[0, 2\), got 0 to 5"),
        ([-1, 0, 1], 3, r"\[0, 3\), got -1 to 1"),
        ([-2, 0], None, "got -2 to 0"),
        ([0], 0, r"\[0, 0\)"),
    ],
)
def test_one_hot_rejects_labels_out_of_range(labels, classes, message):
    with pytest.raises(ValueError, match=message):
        one_hot(np.array(labels), classes=classes)


@pytest.mark.parametrize(
    "labels",
    [np.array([0.0, 1.0]), np.array([0.5, 1.0]), np.array([True, False]), np.array(["0", "1"])],
)
def test_one_hot_rejects_non_integer_labels_as_a_type_error(labels):
    with pytest.raises(TypeError, match=rf"1-D array of integer labels, got {labels.dtype}"):
        one_hot(labels, classes=2)


@pytest.mark.parametrize("labels", [np.array([[0, 1], [1, 0]]), np.array(1)])
def test_one_hot_rejects_non_vector_labels_as_a_shape_error(labels):
    with pytest.raises(ShapeError, match=r"1-D array of integer labels, got int64 of shape"):
        one_hot(labels, classes=2)


# --------------------------------------------------------------------------------------------
# arguments: flags are bools, numbers are numbers, every error names its argument
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["shuffle", "drop_last"])
@pytest.mark.parametrize("flag", ["False", "True", 0, 1, None, 1.0])
def test_loader_flags_must_be_bools(name, flag):
    with pytest.raises(
        TypeError, match=rf"{name} must be True or False, got {re.escape(repr(flag))}"
    ):
        DataLoader(np.zeros((4, 2)), **{name: flag})


def test_loader_accepts_numpy_bools_as_flags():
    loader = DataLoader(np.arange(5), shuffle=np.False_, drop_last=np.True_, batch_size=2)
    assert (loader.shuffle, loader.drop_last) == (False, True)
    assert type(loader.shuffle) is bool
    assert [batch.tolist() for batch in loader] == [[0, 1], [2, 3]]


@pytest.mark.parametrize("seed", ["x", "1", 1.5, True, [1, 2], -1])
def test_loader_seed_must_be_an_integer_a_generator_or_none(seed):
    error = ValueError if seed == -1 and not isinstance(seed, bool) else TypeError
    with pytest.raises(error, match=r"seed must be"):
        DataLoader(np.zeros((4, 2)), seed=seed)


def test_loader_accepts_numpy_integer_seeds():
    orders = [
        [batch.tolist() for batch in DataLoader(np.arange(8), batch_size=8, seed=seed)]
        for seed in (7, np.int64(7), np.uint8(7))
    ]
    assert orders[0] == orders[1] == orders[2]


@pytest.mark.parametrize("test_size", [True, False, np.True_])
def test_split_test_size_true_is_not_one_sample(test_size):
    with pytest.raises(
        TypeError, match=r"test_size must be a fraction .* got (np\.)?(True|False)_? \(bool\)"
    ):
        train_test_split(np.arange(10), np.arange(10), test_size)


@pytest.mark.parametrize("test_size", ["0.2", "2", None, [0.2]])
def test_split_test_size_of_the_wrong_type_is_named(test_size):
    with pytest.raises(TypeError, match=rf"test_size must be .* got {re.escape(repr(test_size))}"):
        train_test_split(np.arange(10), np.arange(10), test_size)


def test_split_accepts_numpy_integer_counts():
    _, x_test, _, _ = train_test_split(np.arange(10), np.arange(10), np.int64(3), seed=0)
    assert len(x_test) == 3


@pytest.mark.parametrize(("x", "y", "name"), [(3, np.arange(3), "x"), (np.arange(3), 3, "y")])
def test_split_of_a_scalar_names_it(x, y, name):
    with pytest.raises(ShapeError, match=rf"train_test_split: {name} must be an array of samples"):
        train_test_split(x, y)


@pytest.mark.parametrize(
    "call",
    [
        lambda: train_test_split([[1, 2], [3]], [0, 1]),
        lambda: DataLoader([[1, 2], [3]]),
        lambda: DataLoader(np.ones((3, 2)), [[1], [2, 3], [4]]),
    ],
)
def test_ragged_samples_are_a_shape_error_naming_the_argument(call):
    with pytest.raises(ShapeError, match=r"(x|y) is not a rectangular array: .*inhomogeneous"):
        call()


@pytest.mark.parametrize("shuffle", ["False", 0, None])
def test_split_shuffle_must_be_a_bool(shuffle):
    with pytest.raises(TypeError, match=r"shuffle must be True or False"):
        train_test_split(np.arange(10), np.arange(10), shuffle=shuffle)


@pytest.mark.parametrize("shuffle", [True, False])
def test_split_seed_must_be_a_seed(shuffle):
    with pytest.raises(TypeError, match=r"seed must be an integer >= 0, a numpy.random.Generator"):
        train_test_split(np.arange(10), np.arange(10), seed="0", shuffle=shuffle)


def test_blobs_negative_spread_says_spread_not_noise():
    with pytest.raises(ValueError, match=r"^spread must be a finite number >= 0, got -1$"):
        make_blobs(spread=-1)


@pytest.mark.parametrize(
    ("make", "kwargs", "error", "pattern"),
    [
        (make_blobs, {"centers": 2.5}, TypeError, r"centers must be an integer, got 2\.5"),
        (make_blobs, {"features": 2.0}, TypeError, r"features must be an integer, got 2\.0"),
        (make_blobs, {"centers": True}, TypeError, r"centers must be an integer, got True"),
        (make_blobs, {"box": float("nan")}, ValueError, r"box must be a finite number <= .* > 0"),
        (make_blobs, {"box": 1e308}, ValueError, r"box must be .*<= 8\.98847e\+307"),
        (make_blobs, {"box": -1.0}, ValueError, r"box must be .* > 0, got -1\.0"),
        (make_blobs, {"spread": "1"}, TypeError, r"spread must be a real number, got '1'"),
        (make_circles, {"factor": "0.5"}, TypeError, r"factor must be a real number, got '0\.5'"),
        (make_spirals, {"classes": 2.0}, TypeError, r"classes must be an integer, got 2\.0"),
        (
            make_spirals,
            {"turns": 0},
            ValueError,
            r"turns must be a finite number <= 1e\+06 and > 0, got 0",
        ),
        (make_spirals, {"turns": 1e308}, ValueError, r"turns must be a finite number <= 1e\+06"),
        (make_spirals, {"turns": "1"}, TypeError, r"turns must be a real number"),
        (make_moons, {"noise": "0.1"}, TypeError, r"noise must be a real number, got '0\.1'"),
        (make_moons, {"noise": True}, TypeError, r"noise must be a real number, got True"),
        (make_xor, {"noise": np.bool_(True)}, TypeError, r"noise must be a real number"),
        (
            make_xor,
            {"noise": 10**400},
            ValueError,
            r"^noise must be a finite number >= 0, got a huge integer",
        ),
        (make_circles, {"factor": 10**400}, ValueError, r"^factor must be a finite number"),
        (make_blobs, {"centers": 10**18}, ValueError, r"a sample for each of the 10+ centers"),
        (
            make_spirals,
            {"n_samples": 5, "classes": 7},
            ValueError,
            r"n_samples must be >= 7.* the 7 classes",
        ),
        (make_xor, {"seed": "a"}, TypeError, r"seed must be an integer >= 0"),
        (make_moons, {"seed": 1.5}, TypeError, r"seed must be an integer >= 0"),
    ],
)
def test_dataset_arguments_of_the_wrong_type_or_value_are_named(make, kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        make(**kwargs)


def test_datasets_accept_numpy_numbers():
    x, y = make_blobs(
        np.int64(30),
        centers=np.int32(3),
        features=np.int16(4),
        spread=np.float32(0.5),
        seed=np.int64(1),
    )
    assert x.shape == (30, 4) and np.bincount(y).tolist() == [10, 10, 10]
    x, y = make_spirals(np.int64(30), noise=np.float64(0.0), classes=np.uint8(3), seed=0)
    assert np.bincount(y).tolist() == [10, 10, 10]


@pytest.mark.parametrize(
    ("make", "features"),
    [
        (make_xor, ""),
        (make_spirals, ""),
        (make_moons, ""),
        (make_circles, ""),
        (make_blobs, ", features=2"),  # the one whose number of features is an argument
    ],
)
def test_a_data_set_larger_than_memory_is_refused_before_allocating(make, features):
    with pytest.raises(
        MemoryError, match=rf"{make.__name__}\(n_samples=1000000000000{features}\) needs about"
    ):
        make(10**12)


@pytest.mark.parametrize(
    ("make", "kwargs"), [(make_xor, {"noise": 1e300}), (make_blobs, {"spread": 1e300})]
)
def test_noise_that_overflows_float32_is_an_error(make, kwargs):
    with pytest.raises(ValueError, match=r"too large: the data overflow float32"):
        make(10, seed=0, **kwargs)


# -- Standardizer: NaN, integers, widths -------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_standardizer_fit_refuses_non_finite_values_naming_the_first(bad):
    x = np.arange(12, dtype=np.float64).reshape(4, 3)
    x[2, 1] = bad
    x[3, 0] = bad
    with pytest.raises(ValueError, match=rf"holds {bad} at row 2, column 1 \(2 non-finite"):
        Standardizer().fit(x)


def test_standardizer_fit_with_a_nan_leaves_an_unfitted_scaler_unfitted():
    scaler = Standardizer()
    with pytest.raises(ValueError, match="row 1, column 0"):
        scaler.fit([[1.0], [np.nan]])
    assert scaler.mean is None and repr(scaler) == "Standardizer(unfitted)"


def test_standardizer_fit_refuses_a_spread_beyond_float64():
    with pytest.raises(ValueError, match=r"column 1's mean or spread overflows float64"):
        Standardizer().fit([[0.0, 1e308], [1.0, -1e308]])


def test_standardizer_inverse_transform_of_integers_gives_float32_not_truncated_values():
    scaler = Standardizer().fit(np.array([[0.0], [3.0]]))  # mean 1.5, std 1.5
    x = scaler.inverse_transform(np.array([[0], [1], [-1]]))
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, [[1.5], [3.0], [0.0]])
    assert scaler.inverse_transform(np.array([[1.0]], dtype=np.float64)).dtype == np.float64


@pytest.mark.parametrize("method", ["transform", "inverse_transform"])
def test_standardizer_wrong_width_is_a_shape_error_naming_both_widths(method):
    scaler = Standardizer().fit(np.zeros((4, 2)))
    with pytest.raises(
        ShapeError,
        match=rf"{method}: it was fitted on 2 features, got shape \(3, 3\) \(3 features\)",
    ):
        getattr(scaler, method)(np.ones((3, 3)))
    with pytest.raises(ShapeError, match=r"one sample is x\.reshape\(1, -1\)"):
        getattr(scaler, method)(np.ones(2))


@pytest.mark.parametrize(
    "x",
    [np.array([["a"], ["b"]]), np.array([[1 + 1j], [2]]), np.array([[None], [1]], dtype=object)],
)
@pytest.mark.parametrize("method", ["fit", "transform", "inverse_transform"])
def test_standardizer_refuses_data_that_is_not_real_numbers(x, method):
    scaler = Standardizer().fit(np.zeros((2, 1)))
    with pytest.raises(
        TypeError, match=rf"Standardizer\.{method} expects real numbers.*got dtype {x.dtype}"
    ):
        getattr(scaler, method)(x)


# -- one_hot: classes checked, sizes bounded ---------------------------------------------------


def test_one_hot_refuses_to_infer_a_class_count_from_one_stray_label():
    with pytest.raises(ValueError, match=r"largest label is 1000000000.*pass classes= explicitly"):
        one_hot([0, 1, 10**9])


def test_one_hot_infers_up_to_the_number_of_labels_or_1024():
    assert one_hot([0, 1023]).shape == (2, 1024)
    assert one_hot(np.arange(3000)[::-1]).shape == (3000, 3000)
    with pytest.raises(ValueError, match="largest label is 1024"):
        one_hot([0, 1024])
    assert one_hot([0, 1024], classes=1025).shape == (2, 1025)


@pytest.mark.parametrize(
    ("classes", "shown"),
    [(10**15, str(10**15)), (10**400, "a huge integer"), (10**5000, "a huge integer")],
    ids=["1e15", "1e400", "1e5000"],  # 10**5000 has no str: Python refuses over 4300 digits
)
def test_one_hot_too_large_for_memory_is_a_memory_error_naming_the_size(classes, shown):
    with pytest.raises(
        MemoryError, match=rf"^one_hot: 2 labels x {shown} classes of float32 need .*GiB"
    ):
        one_hot([0, 1], classes=classes)


def test_a_data_set_of_absurd_size_is_a_memory_error_too():
    with pytest.raises(MemoryError, match=r"needs about 2\^\d+ GiB of memory"):
        make_xor(10**400)


@pytest.mark.parametrize(
    ("classes", "error", "pattern"),
    [
        ("3", TypeError, r"classes must be an integer, got '3' \(str\)"),
        (3.0, TypeError, r"classes must be an integer, got 3\.0"),
        (True, TypeError, r"classes must be an integer, got True"),
        (-1, ValueError, r"classes must be >= 0, got -1"),
    ],
)
def test_one_hot_classes_must_be_an_integer(classes, error, pattern):
    with pytest.raises(error, match=pattern):
        one_hot([0, 1], classes=classes)


def test_one_hot_accepts_numpy_integer_classes_and_empty_lists():
    np.testing.assert_array_equal(one_hot([1], classes=np.int64(3)), [[0, 1, 0]])
    assert one_hot([], classes=3).shape == (0, 3)


@pytest.mark.parametrize("dtype", [None, "U3", object, "complex128", "no such type"])
def test_one_hot_dtype_must_be_numeric(dtype):
    with pytest.raises(TypeError, match=r"one_hot dtype must be a NumPy bool, integer or float"):
        one_hot([0, 1], dtype=dtype)


# -- settings assigned after construction -----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "error", "pattern"),
    [
        ("shuffle", "False", TypeError, r"^shuffle must be True or False, got 'False' \(str\)$"),
        ("shuffle", 0, TypeError, r"^shuffle must be True or False, got 0 \(int\)$"),
        ("drop_last", "True", TypeError, r"^drop_last must be True or False, got 'True'"),
        ("batch_size", 0, ValueError, r"^batch_size must be >= 1, got 0$"),
        ("batch_size", 2.0, TypeError, r"^batch_size must be an integer, got 2\.0 \(float\)$"),
        ("batch_size", True, TypeError, r"^batch_size must be an integer, got True"),
        (
            "rng",
            1.5,
            TypeError,
            r"^rng must be an integer >= 0, a numpy\.random\.Generator or None",
        ),
        ("rng", -1, ValueError, r"^rng must be >= 0, got -1$"),
    ],
)
def test_loader_settings_assigned_later_are_checked_as_in_the_constructor(
    name, value, error, pattern
):
    loader = DataLoader(np.arange(10), np.arange(10), batch_size=4, shuffle=False, seed=0)
    before = getattr(loader, name)
    with pytest.raises(error, match=pattern):
        setattr(loader, name, value)
    assert getattr(loader, name) is before
    assert [yb.tolist() for _, yb in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_loader_settings_assigned_later_take_effect():
    loader = DataLoader(np.arange(10), np.arange(10), batch_size=4, shuffle=False)
    loader.batch_size = np.int64(3)
    loader.drop_last = np.True_
    assert type(loader.batch_size) is int and loader.drop_last is True
    assert [yb.tolist() for _, yb in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    loader.shuffle, loader.rng = True, 7
    shuffled = [yb.tolist() for _, yb in loader]
    assert shuffled == [
        yb.tolist()
        for _, yb in DataLoader(np.arange(10), np.arange(10), batch_size=3, drop_last=True, seed=7)
    ]
    assert repr(loader) == "DataLoader(samples=10, batch_size=3, shuffle=True, drop_last=True)"


@pytest.mark.parametrize("name", ["x", "y"])
def test_loader_data_cannot_be_replaced(name):
    loader = DataLoader(np.arange(4), np.arange(4), batch_size=2, shuffle=False)
    with pytest.raises(
        AttributeError, match=rf"^DataLoader\.{name} cannot be replaced .*build a new"
    ):
        setattr(loader, name, np.arange(6))
    assert loader.x.tolist() == loader.y.tolist() == [0, 1, 2, 3]


def test_loader_repr_shortens_a_huge_batch_size():
    loader = DataLoader(np.arange(4), batch_size=10**5000)
    assert len(loader) == 1
    assert repr(loader) == (
        "DataLoader(samples=4, batch_size=a huge integer, shuffle=True, drop_last=False)"
    )


@pytest.mark.parametrize(
    ("name", "value", "error", "pattern"),
    [
        ("mean", "abc", TypeError, r"^Standardizer\.mean expects real numbers .*got dtype <U3$"),
        ("mean", [[0.0, 1.0]], ShapeError, r"^Standardizer\.mean must be a 1-D array .*\(1, 2\)"),
        (
            "mean",
            [0.0, np.nan],
            ValueError,
            r"^Standardizer\.mean must hold finite numbers, got nan at index 1$",
        ),
        (
            "std",
            [1.0, 0.0],
            ValueError,
            r"^Standardizer\.std must hold finite numbers > 0, got 0\.0 at index 1$",
        ),
        (
            "std",
            [-1.0, 1.0],
            ValueError,
            r"^Standardizer\.std must hold finite numbers > 0, got -1\.0",
        ),
        (
            "std",
            [1.0, np.inf],
            ValueError,
            r"^Standardizer\.std must hold finite numbers > 0, got inf",
        ),
        ("std", ["1", "2"], TypeError, r"^Standardizer\.std expects real numbers"),
    ],
)
def test_standardizer_statistics_assigned_later_are_checked(name, value, error, pattern):
    scaler = Standardizer().fit(np.array([[0.0, 5.0], [2.0, 7.0]]))
    before = getattr(scaler, name).copy()
    with pytest.raises(error, match=pattern):
        setattr(scaler, name, value)
    np.testing.assert_array_equal(getattr(scaler, name), before)
    np.testing.assert_array_equal(scaler.transform([[1.0, 6.0]]), [[0.0, 0.0]])


def test_standardizer_statistics_may_be_set_directly():
    scaler = Standardizer()
    given = np.array([1.0, 2.0], dtype=np.float32)
    scaler.mean, scaler.std = given, [2, 4]
    given[0] = 100.0  # a copy was kept
    assert scaler.mean.dtype == scaler.std.dtype == np.float64
    np.testing.assert_array_equal(scaler.transform(np.array([[3.0, 6.0]])), [[1.0, 1.0]])
    scaler.std = [1.0, 1.0, 1.0]  # each is fine alone; together they do not fit
    with pytest.raises(ShapeError, match=r"mean has shape \(2,\) but std has shape \(3,\)"):
        scaler.transform([[3.0, 6.0]])
    scaler.mean = None
    assert repr(scaler) == "Standardizer(unfitted)"
    with pytest.raises(RuntimeError, match=r"before fit\(\)"):
        scaler.transform([[3.0, 6.0]])


# -- huge integers and raw errors ---------------------------------------------------------------


def test_split_with_a_huge_integer_test_size_is_reported_shortened():
    with pytest.raises(
        ValueError,
        match=r"^test_size=a huge integer leaves 5 of 5 samples for testing; both "
        r"sets need at least one$",
    ):
        train_test_split(np.arange(5), np.arange(5), 10**5000)


@pytest.mark.parametrize("make", [make_xor, make_spirals, make_moons, make_circles, make_blobs])
def test_a_huge_integer_n_samples_is_reported_shortened(make):
    with pytest.raises(MemoryError, match=rf"^{make.__name__}\(n_samples=a huge integer"):
        make(n_samples=10**5000)


@pytest.mark.parametrize(
    ("make", "kwargs", "pattern"),
    [
        (make_blobs, {"centers": 10**5000}, r"^n_samples must be >= a huge integer, got 300"),
        (make_spirals, {"classes": 10**400}, r"^n_samples must be >= a huge integer, got 1000"),
        (make_moons, {"noise": 10**5000}, r"^noise must be a finite number >= 0, got a huge"),
        (make_blobs, {"box": 10**5000}, r"^box must be a finite number .*got a huge integer$"),
    ],
)
def test_huge_integer_settings_are_reported_shortened(make, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        make(**kwargs)


def test_make_blobs_too_large_through_its_features_names_them():
    with pytest.raises(
        MemoryError,
        match=r"^make_blobs\(n_samples=300, features=1000000000\) needs about .* GiB of memory; "
        r"ask for fewer samples or features",
    ):
        make_blobs(features=10**9)


@pytest.mark.parametrize("labels", [[[0], [1, 2]], [0, [1, 2]]])
def test_one_hot_ragged_labels_are_a_shape_error_naming_labels(labels):
    with pytest.raises(
        ShapeError, match=r"^one_hot expects a 1-D array of integer labels, got nested lists"
    ):
        one_hot(labels)


def test_one_hot_dtype_that_is_a_huge_integer_is_reported_shortened():
    with pytest.raises(TypeError, match=r"dtype, got a huge integer \(int\)$"):
        one_hot([0], dtype=10**5000)
