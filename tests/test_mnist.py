"""IDX files and MNIST: streamed, bounded reads of untrusted files, errors that name the file,
and load_mnist's scaling and arguments (the format round trips are in test_data.py)."""

from __future__ import annotations

import gzip
import os
import re
import signal
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest

from minigrad.data import load_mnist, read_idx

IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def header(code: int, shape: tuple[int, ...]) -> bytes:
    return bytes([0, 0, code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


def idx(array: np.ndarray) -> bytes:
    code = IDX_CODES[array.dtype]
    return header(code, array.shape) + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write(path: Path, data: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def peak_bytes(function) -> tuple[int, BaseException | None]:
    """The most memory Python allocated while ``function`` ran, and what it raised."""
    tracemalloc.start()
    raised = None
    try:
        function()
    except BaseException as error:  # handed back to the caller
        raised = error
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, raised


@pytest.fixture
def no_hang():
    """Fail, rather than block for ever, if opening a named pipe waits for a writer."""

    def timeout(signum, frame):
        raise TimeoutError("blocked opening a named pipe")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(10)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


# -- case 9: a gzip bomb is not decompressed beyond what its header declares --------------------


def test_a_small_gzip_file_that_expands_far_beyond_its_header_is_refused_early(tmp_path):
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    parts = [compressor.compress(header(0x08, (10,)))]
    zeros = bytes(1 << 20)
    parts += [compressor.compress(zeros) for _ in range(64)]  # 64 MiB of values, not 10 bytes
    path = tmp_path / "bomb-idx1-ubyte.gz"
    path.write_bytes(b"".join(parts) + compressor.flush())
    assert path.stat().st_size < 1 << 20
    peak, error = peak_bytes(lambda: read_idx(path))
    assert isinstance(error, ValueError)
    assert re.search(
        re.escape(str(path)) + r": header shape \(10,\) of uint8 needs 10 bytes of values, the "
        r"file holds more than 4106",
        str(error),
    ), error
    assert peak < 8 << 20, f"decompressed {peak} bytes"


@pytest.mark.parametrize("extra", [1, 4, 4096, 5000])
def test_a_compressed_file_that_holds_too_much_says_by_how_much_while_it_is_little(tmp_path, extra):
    path = write(tmp_path / "v.idx.gz", idx(np.arange(6, dtype=np.int16)) + bytes(extra), gz=True)
    holds = f"more than {12 + 4096}" if extra > 4096 else str(12 + extra)
    with pytest.raises(ValueError, match=rf"needs 12 bytes of values, the file holds {holds}$"):
        read_idx(path)


def test_a_plain_file_is_checked_against_its_size_before_its_values_are_read(tmp_path):
    path = tmp_path / "big-idx1-ubyte"
    with open(path, "wb") as file:  # 1 GiB, sparse, whose header claims 10 values
        file.write(header(0x08, (10,)))
        file.truncate(1 << 30)
    peak, error = peak_bytes(lambda: read_idx(path))
    assert isinstance(error, ValueError)
    assert f"needs 10 bytes of values, the file holds {(1 << 30) - 8}" in str(error)
    assert peak < 1 << 20, f"read {peak} bytes"


# -- case 13: corrupt, truncated or impossible files are ValueErrors naming the file ---------


@pytest.mark.parametrize("cut", [1, 5, 10, 20, 30])
def test_a_truncated_gzip_file_is_a_value_error_naming_it(tmp_path, cut):
    data = gzip.compress(idx(np.arange(200, dtype=np.uint8).reshape(2, 10, 10)))
    path = write(tmp_path / "images-idx3-ubyte.gz", data[:-cut])
    with pytest.raises(
        ValueError,
        match=re.escape(str(path)) + r": the gzip stream is truncated \(the file ends before",
    ) as info:
        read_idx(path)
    assert isinstance(info.value.__cause__, EOFError)


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda d: d[:2] + b"\x07" + d[3:], r"not a valid gzip file \(Unknown compression"),
        (lambda d: d[:-8] + bytes(4) + d[-4:], r"not a valid gzip file \(CRC check failed"),
        (lambda d: d[:-4] + (7).to_bytes(4, "little"), r"not a valid gzip file \(Incorrect length"),
        (lambda d: d[:12] + bytes([d[12] ^ 0xFF]) + d[13:], r"not a valid gzip file"),
        (lambda d: b"\x1f\x8b" + bytes(18), r"not a valid gzip file"),
        (lambda d: d + b"garbage!", r"not a valid gzip file"),
        (lambda d: idx(np.arange(3, dtype=np.uint8)), r"not a valid gzip file \(Not a gzipped"),
    ],
)
def test_a_corrupt_gzip_file_is_a_value_error_naming_it(tmp_path, damage, match):
    data = gzip.compress(idx(np.arange(200, dtype=np.uint8)), mtime=0)
    path = write(tmp_path / "labels-idx1-ubyte.gz", damage(data))
    with pytest.raises(ValueError, match=re.escape(str(path)) + ": " + match) as info:
        read_idx(path)
    assert isinstance(info.value.__cause__, (OSError, zlib.error, EOFError))


@pytest.mark.parametrize("gz", [False, True])
def test_sizes_whose_product_overflows_int64_are_a_value_error_naming_the_file(tmp_path, gz):
    big = 2**32 - 1
    path = write(tmp_path / f"huge.idx{'.gz' if gz else ''}", header(0x0E, (big, big, big)), gz)
    with pytest.raises(
        ValueError,
        match=re.escape(str(path))
        + rf": header shape \({big}, {big}, {big}\) of float64 is too large for an array",
    ):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_a_header_with_more_dimensions_than_numpy_takes_is_a_value_error_naming_the_file(
    tmp_path, gz
):
    path = write(tmp_path / f"deep.idx{'.gz' if gz else ''}", header(0x08, (0,) * 255), gz)
    with pytest.raises(
        ValueError,
        match=re.escape(str(path))
        + r": the IDX header declares 255 dimensions; arrays have at most 32 here$",
    ):
        read_idx(path)
    within = write(tmp_path / f"ok.idx{'.gz' if gz else ''}", header(0x08, (0,) * 32), gz)
    assert read_idx(within).shape == (0,) * 32


@pytest.mark.parametrize("gz", [False, True])
def test_an_empty_shape_numpy_cannot_index_is_a_value_error_naming_the_file(tmp_path, gz):
    big = 2**32 - 1
    shape = (0, big, big, big)  # no values, but sizes whose product passes NumPy's limit
    path = write(tmp_path / f"empty.idx{'.gz' if gz else ''}", header(0x08, shape), gz)
    with pytest.raises(
        ValueError,
        match=re.escape(str(path)) + rf": header shape \(0, {big}, {big}, {big}\) of uint8 is too "
        r"large for an array",
    ):
        read_idx(path)


def test_a_named_pipe_given_as_an_idx_file_is_refused(tmp_path, no_hang):
    os.mkfifo(tmp_path / "fifo-idx1-ubyte")  # would block for ever if opened for reading
    with pytest.raises(ValueError, match=r"fifo-idx1-ubyte is a named pipe \(FIFO\), not a"):
        read_idx(tmp_path / "fifo-idx1-ubyte")


# -- case 24: only uint8 pixels are divided by 255 --------------------------------------------


def mnist(folder: Path, images: np.ndarray, labels: np.ndarray, split: str = "train") -> None:
    prefix = {"train": "train", "test": "t10k"}[split]
    write(folder / f"{prefix}-images-idx3-ubyte", idx(images))
    write(folder / f"{prefix}-labels-idx1-ubyte", idx(labels))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int16, np.int32, np.int8])
def test_images_of_another_type_than_uint8_are_not_divided_by_255(tmp_path, dtype):
    images = (np.arange(24).reshape(2, 3, 4) * 5).astype(dtype)
    if dtype is np.float32 or dtype is np.float64:
        images = images / 100  # already scaled to [0, 1.2]: dividing again would be wrong
    mnist(tmp_path, images, np.array([3, 7], np.uint8))
    x, _ = load_mnist(tmp_path)
    assert x.dtype == np.float32
    np.testing.assert_array_equal(x, images.reshape(2, 12).astype(np.float32))
    raw, _ = load_mnist(tmp_path, scale=False, flatten=False)
    assert raw.dtype == dtype
    np.testing.assert_array_equal(raw, images)


def test_uint8_images_are_divided_by_255(tmp_path):
    images = np.array([[[0, 51], [255, 102]]], np.uint8)
    mnist(tmp_path, images, np.array([1], np.uint8))
    x, _ = load_mnist(tmp_path, flatten=False)
    np.testing.assert_allclose(x, [[[0, 0.2], [1, 0.4]]], rtol=1e-7)


def test_labels_stored_as_floats_are_refused_not_truncated(tmp_path):
    mnist(tmp_path, np.zeros((2, 2, 2), np.uint8), np.array([3.7, 1.0], np.float32))
    labels = tmp_path / "train-labels-idx1-ubyte"
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(labels))}: MNIST labels must be stored as integers, got float32",
    ):
        load_mnist(tmp_path)


@pytest.mark.parametrize("bad", [10, 255])
def test_labels_that_are_not_digits_are_refused_naming_the_file_and_the_first_one(tmp_path, bad):
    mnist(tmp_path, np.zeros((4, 2, 2), np.uint8), np.array([3, 7, bad, 1], np.uint8), "test")
    labels = tmp_path / "t10k-labels-idx1-ubyte"
    with pytest.raises(
        ValueError,
        match=rf"^{re.escape(str(labels))}: MNIST labels must be digits 0-9, got 1 to {bad} "
        rf"\(the first that is not, {bad}, at index 2\)$",
    ):
        load_mnist(tmp_path, "test")


def test_images_and_labels_that_do_not_fit_together_are_both_named(tmp_path):
    mnist(tmp_path, np.zeros((3, 2, 2), np.uint8), np.array([1, 2], np.uint8))
    with pytest.raises(
        ValueError,
        match=r"MNIST train files do not fit together: images \(3, 2, 2\), labels \(2,\); "
        r"expected \(n, rows, cols\) and \(n,\) \(images from "
        rf"{re.escape(str(tmp_path / 'train-images-idx3-ubyte'))}, labels from "
        rf"{re.escape(str(tmp_path / 'train-labels-idx1-ubyte'))}\)$",
    ):
        load_mnist(tmp_path)


# -- load_mnist's arguments and folder -------------------------------------------------------


def test_load_mnist_names_arguments_of_the_wrong_type(tmp_path):
    mnist(tmp_path, np.zeros((2, 2, 2), np.uint8), np.array([1, 2], np.uint8))
    for keywords, error, match in [
        ({"flatten": "False"}, TypeError, r"flatten must be True or False, got 'False' \(str\)"),
        ({"scale": 0}, TypeError, r"scale must be True or False, got 0 \(int\)"),
        ({"split": ["train"]}, TypeError, r"split must be 'train' or 'test', got list"),
        ({"split": None}, TypeError, r"split must be 'train' or 'test', got NoneType"),
        ({"split": "valid"}, ValueError, r"split must be 'train' or 'test', got 'valid'$"),
    ]:
        with pytest.raises(error, match=match):
            load_mnist(tmp_path, **keywords)
    with pytest.raises(
        ValueError, match=r"split must be 'train' or 'test', got 'zzz+\.\.\.$"
    ) as info:
        load_mnist(tmp_path, "z" * 1_000_000)
    assert len(str(info.value)) < 200
    with pytest.raises(TypeError, match=r"directory must be a file path .*got None"):
        load_mnist(None)
    with pytest.raises(ValueError, match="directory is empty"):
        load_mnist("")
    x, _ = load_mnist(tmp_path, flatten=np.bool_(False), scale=np.True_)
    assert x.shape == (2, 2, 2)


def test_load_mnist_says_when_the_folder_is_missing_or_a_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST folder .*nothing does not exist"):
        load_mnist(tmp_path / "nothing")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match=r"MNIST folder .*file is a file, not a folder"):
        load_mnist(tmp_path / "file")


def test_a_special_file_under_an_mnist_name_is_named_not_skipped(tmp_path, no_hang):
    os.mkfifo(tmp_path / "train-images-idx3-ubyte")
    write(tmp_path / "train-labels-idx1-ubyte", idx(np.array([1], np.uint8)))
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte is a named pipe \(FIFO\)"):
        load_mnist(tmp_path)
    (tmp_path / "t10k-images-idx3-ubyte").symlink_to("/dev/null")
    with pytest.raises(
        ValueError, match=r"t10k-images-idx3-ubyte \(a link to /dev/null\) is a character device"
    ):
        load_mnist(tmp_path, "test")
