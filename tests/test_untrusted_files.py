"""Untrusted model files: loading never runs code, and every malformed file is a ModelFileError.

Each case builds a malformed file by hand (8-byte header length, JSON header, data) or rewrites
one part of a valid model or checkpoint file, and checks both the exception type and what its
message says. Pickles (plain and inside a torch.save zip) carry a payload that would create a
file if it were ever unpickled. The property tests mutate valid files at random: a load either
gives a well-formed model or raises ModelFileError, never anything else.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import minigrad as mg
from minigrad.errors import ModelFileError
from minigrad.serialization import safetensors_file

safetensors_numpy = pytest.importorskip("safetensors.numpy")

LOADERS = {"load": mg.load, "load_checkpoint": mg.load_checkpoint, "load_tensors": mg.load_tensors}
LOAD_KIND = {"model": mg.load, "checkpoint": mg.load_checkpoint}


# -- building files by hand ---------------------------------------------------------------------


def assemble(header: Any, data: bytes = b"") -> bytes:
    """A safetensors file: the header's length (8 bytes, little-endian), its JSON, the data."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return len(raw).to_bytes(8, "little") + raw + data


def split(raw: bytes) -> tuple[dict[str, Any], bytes]:
    """The parsed header and the data section of a well-formed file."""
    length = int.from_bytes(raw[:8], "little")
    return json.loads(raw[8 : 8 + length]), raw[8 + length :]


def entry(dtype: str, shape: Any, begin: Any, end: Any) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def metadata_of(raw: bytes) -> dict[str, str]:
    return dict(split(raw)[0].get("__metadata__", {}))


def with_metadata(raw: bytes, changes: dict[str, Any]) -> bytes:
    """``raw`` with metadata entries replaced (None: removed); the tensors are untouched."""
    header, data = split(raw)
    header = copy.deepcopy(header)
    metadata = header.setdefault("__metadata__", {})
    for key, value in changes.items():
        if value is None:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    return assemble(header, data)


def with_json(raw: bytes, key: str, value: Any) -> bytes:
    """``raw`` with the metadata entry ``key`` holding ``value`` as JSON."""
    return with_metadata(raw, {key: json.dumps(value)})


def with_tensors(raw: bytes, change, prefix: str = "") -> bytes:
    """``raw`` rewritten by the safetensors package after ``change(tensors)`` edits the tensors
    whose names start with ``prefix`` (passed without it); the metadata is kept."""
    tensors = safetensors_numpy.load(raw)
    chosen = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    rest = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
    change(chosen)
    rest.update({prefix + k: v for k, v in chosen.items()})
    return safetensors_numpy.save(rest, metadata=metadata_of(raw))


def write(tmp_path: Path, raw: bytes, name: str = "model.safetensors") -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def small_model() -> mg.Sequential:
    return mg.Sequential(mg.Dense(3, 4, rng=0), mg.Tanh(), mg.Dense(4, 2, rng=1))


def dense(in_features: Any, out_features: Any, **config: Any) -> dict[str, Any]:
    return {
        "class": "Dense",
        "config": {
            "in_features": in_features,
            "out_features": out_features,
            "bias": True,
            "dtype": "float32",
            **config,
        },
    }


def sequential(*layers: Any) -> dict[str, Any]:
    return {"class": "Sequential", "layers": list(layers)}


TANH = {"class": "Tanh", "config": {}}
#: The architecture of small_model() as a file describes it
ARCHITECTURE = sequential(dense(3, 4), TANH, dense(4, 2))
#: The prefix of tensor names in each kind of file
PREFIX = {"model": "", "checkpoint": "model."}


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, bytes]:
    """The bytes of a valid model file and of a valid checkpoint of small_model()."""
    folder = tmp_path_factory.mktemp("valid")
    model = small_model()
    mg.save(model, folder / "model.safetensors")
    optimizer = mg.Adam(model.parameters(), lr=0.01)
    for p in model.parameters():
        p.grad[...] = 1.0
    optimizer.step()
    mg.save_checkpoint(
        folder / "checkpoint.safetensors",
        model,
        optimizer,
        epoch=2,
        step=1,
        rng=np.random.default_rng(0),
        history={"loss": [1.0, 0.5]},
    )
    return ValidFiles(
        model=(folder / "model.safetensors").read_bytes(),
        checkpoint=(folder / "checkpoint.safetensors").read_bytes(),
    )


class ValidFiles(dict):
    """The valid files by kind, with a short repr for hypothesis's reports."""

    def __repr__(self) -> str:
        return "ValidFiles(model=..., checkpoint=...)"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """A folder for the property tests (hypothesis does not mix with function fixtures)."""
    return tmp_path_factory.mktemp("mutated")


def test_the_valid_files_and_their_hand_reassembled_copies_load(tmp_path, files):
    """The baseline every other test changes one thing in: it loads as it is."""
    expected = small_model().state_dict()
    assert json.loads(metadata_of(files["model"])["minigrad.architecture"]) == ARCHITECTURE
    for raw in (
        files["model"],
        assemble(*split(files["model"])),
        with_metadata(files["model"], {}),
    ):
        model = mg.load(write(tmp_path, raw))
        assert list(model.state_dict()) == list(expected)
        for key, value in model.state_dict().items():
            np.testing.assert_array_equal(value, expected[key])
            assert value.dtype == expected[key].dtype
    checkpoint = mg.load_checkpoint(write(tmp_path, assemble(*split(files["checkpoint"]))))
    assert (checkpoint.epoch, checkpoint.step, checkpoint.history) == (2, 1, {"loss": [1.0, 0.5]})
    assert isinstance(checkpoint.optimizer, mg.Adam)
    tensors = mg.load_tensors(write(tmp_path, assemble({"w": entry("F32", [1], 0, 4)}, b"\0" * 4)))
    assert list(tensors) == ["w"]
    assert tensors["w"].dtype == np.float32


# -- the safetensors layer: header length, JSON, entries, offsets -------------------------------

W = {"w": entry("F32", [1], 0, 4)}
FOUR = b"\x00\x00\x80\x3f"  # 1.0 as float32

HEADER_CASES = [
    pytest.param(b"", r"0 bytes, shorter than the 8-byte header length", id="empty"),
    pytest.param(b"\x01" * 7, r"7 bytes, shorter than the 8-byte header length", id="7-bytes"),
    pytest.param(
        (1000).to_bytes(8, "little") + b"{}",
        r"header length field says 1000 bytes, but only 2 follow it",
        id="header-length-beyond-file",
    ),
    pytest.param(
        b"\xff" * 8 + b"{}",
        r"header length field says 18446744073709551615 bytes, but only 2 follow it",
        id="header-length-2**64-1",
    ),
    pytest.param(
        assemble(json.dumps(W).encode()[:-1], FOUR), r"header is not valid JSON", id="unclosed"
    ),
    pytest.param(assemble(b"", FOUR), r"safetensors header is not valid JSON", id="empty-header"),
    pytest.param(assemble(b'{"w": ', FOUR), r"header is not valid JSON", id="invalid-json"),
    pytest.param(assemble(b'{"\xff\xfe": 1}'), r"header is not valid JSON.*utf-8", id="bad-utf8"),
    pytest.param(assemble(b"\xef\xbb\xbf{}"), r"header is not valid JSON", id="utf8-bom"),
    pytest.param(assemble(b"[" * 100_000), r"header is not valid JSON", id="deep-nesting"),
    pytest.param(
        assemble(b'{"w": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        r"header is not valid JSON",
        id="deep-nesting-closed",
    ),
    pytest.param(
        assemble(b'{"a":' * 100_000 + b"1" + b"}" * 100_000),
        r"header is not valid JSON",
        id="deep-objects",
    ),
    pytest.param(assemble([W]), r"header must be a JSON object, got list", id="header-list"),
    pytest.param(assemble("w"), r"header must be a JSON object, got str", id="header-string"),
    pytest.param(assemble(4), r"header must be a JSON object, got int", id="header-int"),
    pytest.param(assemble(None), r"header must be a JSON object, got NoneType", id="header-null"),
    pytest.param(
        assemble({"__metadata__": {"minigrad.format": 1}, **W}, FOUR),
        r"__metadata__ must map strings to strings",
        id="metadata-int-value",
    ),
    pytest.param(
        assemble({"__metadata__": {"minigrad.architecture": {"class": "Dense"}}, **W}, FOUR),
        r"__metadata__ must map strings to strings",
        id="metadata-object-value",
    ),
    pytest.param(
        assemble({"__metadata__": {"minigrad.format": None}, **W}, FOUR),
        r"__metadata__ must map strings to strings",
        id="metadata-null-value",
    ),
    pytest.param(
        assemble({"__metadata__": ["minigrad.format", "model"], **W}, FOUR),
        r"__metadata__ must map strings to strings",
        id="metadata-list",
    ),
    pytest.param(
        assemble({"__metadata__": "model", **W}, FOUR),
        r"__metadata__ must map strings to strings",
        id="metadata-string",
    ),
    pytest.param(
        assemble({"w": [0, 4]}, FOUR),
        r"tensor 'w' must be described by dtype, shape and data_offsets",
        id="entry-list",
    ),
    pytest.param(
        assemble({"w": {"dtype": "F32", "shape": [1]}}, FOUR),
        r"tensor 'w' must be described by dtype, shape and data_offsets",
        id="entry-without-offsets",
    ),
    pytest.param(
        assemble({"w": {**W["w"], "code": "os.system"}}, FOUR),
        r"tensor 'w' must be described by dtype, shape and data_offsets",
        id="entry-extra-key",
    ),
    *[
        pytest.param(
            assemble({"w": entry(code, [1], 0, size)}, b"\0" * size),
            rf"tensor 'w' has dtype {code!r}; minigrad reads \['F16', 'F32', 'F64', 'I64'\]",
            id=f"dtype-{code}",
        )
        for code, size in [
            ("I32", 4),
            ("BOOL", 1),
            ("U8", 1),
            ("BF16", 2),
            ("F8_E4M3", 1),
            ("f32", 4),
            ("float32", 4),
            ("", 4),
            (None, 4),
            (4, 4),
        ]
    ],
    *[
        pytest.param(
            assemble({"w": entry(code, [1], 0, 4)}, FOUR),
            r"tensor 'w' has dtype .*; minigrad reads \['F16', 'F32', 'F64', 'I64'\]",
            id=f"dtype-{type(code).__name__}",
        )
        for code in (["F32"], {"F32": 4})
    ],
    *[
        pytest.param(
            assemble({"w": entry("F32", shape, 0, 4)}, FOUR),
            r"tensor 'w' has shape .*; expected a list of at most 8 non-negative integers",
            id=f"shape-{name}",
        )
        for name, shape in [
            ("string", "1"),
            ("int", 1),
            ("object", {"0": 1}),
            ("null", None),
            ("negative-pair", [-1, -1]),  # its product, 1, matches the 4 bytes
            ("negative", [-4]),
            ("float", [1.0]),
            ("bool", [True]),
            ("string-dim", ["1"]),
            ("nested", [[1]]),
            ("9-dimensions", [1] * 9),
            ("1000-dimensions", [1] * 1000),
        ]
    ],
    *[
        pytest.param(
            assemble({"w": entry(code, shape, 0, 4)}, FOUR),
            rf"tensor 'w' of shape {re_tuple} and dtype {code} needs {needed} bytes, but its "
            r"offsets span 4",
            id=f"byte-count-{name}",
        )
        for name, code, shape, re_tuple, needed in [
            ("shape-2", "F32", [2], r"\(2,\)", 8),
            ("scalar-f64", "F64", [], r"\(\)", 8),
            ("f16-3", "F16", [3], r"\(3,\)", 6),
            ("i64-2", "I64", [2], r"\(2,\)", 16),
            ("scalar-i64", "I64", [], r"\(\)", 8),
            ("empty", "F32", [0], r"\(0,\)", 0),
            ("2**40-squared", "F32", [2**40, 2**40], r"\(1099511627776, 1099511627776\)", 2**82),
            ("8-huge-dims", "F64", [2**62] * 8, r"\(4611686018427387904, .*\)", 2**499),
        ]
    ],
    *[
        pytest.param(
            assemble({"w": {"dtype": "F32", "shape": [1], "data_offsets": offsets}}, FOUR),
            r"tensor 'w' has data_offsets .*; expected \[begin, end\] with 0 <= begin <= end",
            id=f"offsets-{name}",
        )
        for name, offsets in [
            ("reversed", [4, 0]),
            ("negative", [-4, 0]),
            ("one", [4]),
            ("three", [0, 4, 8]),
            ("string", "0:4"),
            ("floats", [0, 4.0]),
            ("bools", [False, True]),
            ("null", None),
        ]
    ],
    pytest.param(
        assemble({"w": entry("F32", [2], 0, 8)}, FOUR),
        r"tensor 'w' ends at byte 8 of the data, which has only 4 bytes",
        id="offsets-past-the-end",
    ),
    pytest.param(
        assemble({"w": entry("F32", [1], 2**60, 2**60 + 4)}, FOUR),
        rf"tensor 'w' ends at byte {2**60 + 4} of the data, which has only 4 bytes",
        id="offsets-far-past-the-end",
    ),
    pytest.param(
        assemble({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, b"\0" * 12),
        r"tensor 'b' starts at data byte 4, which overlaps the tensor before it \(expected 8\)",
        id="overlapping",
    ),
    pytest.param(
        assemble({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 0, 4)}, FOUR),
        r"starts at data byte 0, which overlaps the tensor before it \(expected 4\)",
        id="aliased",
    ),
    pytest.param(
        assemble({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, b"\0" * 12),
        r"tensor 'b' starts at data byte 8, which leaves a gap \(expected 4\)",
        id="gap-between",
    ),
    pytest.param(
        assemble({"w": entry("F32", [1], 4, 8)}, b"\0" * 8),
        r"tensor 'w' starts at data byte 4, which leaves a gap \(expected 0\)",
        id="gap-before",
    ),
    pytest.param(
        assemble(W, FOUR * 2),
        r"the tensors cover 4 bytes of data, but 8 follow the header",
        id="trailing-data",
    ),
    pytest.param(
        assemble({}, FOUR),
        r"the tensors cover 0 bytes of data, but 4 follow the header",
        id="data-without-tensors",
    ),
]


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize(("raw", "match"), HEADER_CASES)
def test_a_malformed_safetensors_layer_is_a_model_file_error(tmp_path, loader, raw, match):
    path = write(tmp_path, raw)
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=match) as info:
        LOADERS[loader](path)
    assert str(path) in str(info.value)  # the message names the file
    assert time.perf_counter() - start < 2.0


def test_a_header_above_the_size_limit_is_refused_before_it_is_parsed(tmp_path, monkeypatch):
    monkeypatch.setattr(safetensors_file, "MAX_HEADER_BYTES", 64)
    path = write(tmp_path, assemble(b"[" * 100 + b"]" * 100))
    for loader in LOADERS.values():
        with pytest.raises(
            ModelFileError, match=r"header length field says 200 bytes, but headers are limited"
        ):
            loader(path)


@pytest.mark.parametrize("loader", list(LOADERS))
def test_every_truncation_of_a_valid_file_is_a_model_file_error(tmp_path, files, loader):
    raw = files["checkpoint" if loader == "load_checkpoint" else "model"]
    path = tmp_path / "model.safetensors"
    for length in range(len(raw)):
        path.write_bytes(raw[:length])
        with pytest.raises(
            ModelFileError, match=r"shorter than the 8-byte header length|truncated"
        ):
            LOADERS[loader](path)
    path.write_bytes(raw)
    LOADERS[loader](path)  # the whole file loads


@pytest.mark.parametrize("loader", list(LOADERS))
def test_bytes_appended_or_a_length_off_by_some_are_model_file_errors(tmp_path, files, loader):
    raw = files["checkpoint" if loader == "load_checkpoint" else "model"]
    length = int.from_bytes(raw[:8], "little")
    cases = [
        (raw + b"\0", r"the tensors cover \d+ bytes of data, but \d+ follow the header"),
        (raw + raw, r"the tensors cover \d+ bytes of data, but \d+ follow the header"),
        # the header may end in padding spaces, so one byte less can still be JSON
        ((length - 1).to_bytes(8, "little") + raw[8:], r"not valid JSON|the tensors cover"),
        # the first data byte may be JSON whitespace; then the data is one byte short
        ((length + 1).to_bytes(8, "little") + raw[8:], r"not valid JSON|truncated"),
        ((length + 10**6).to_bytes(8, "little") + raw[8:], r"header length field says"),
    ]
    for mutated, match in cases:
        with pytest.raises(ModelFileError, match=match):
            LOADERS[loader](write(tmp_path, mutated))


def test_random_bytes_are_model_file_errors(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "model.safetensors"
    for size in [*range(16), *rng.integers(16, 4000, size=150)]:
        body = rng.integers(0, 256, size=int(size), dtype=np.uint8).tobytes()
        for raw, match in [
            (body, r"not a safetensors file"),
            (assemble(body), r"not valid JSON|must be a JSON object"),
        ]:
            path.write_bytes(raw)
            for loader in LOADERS.values():
                with pytest.raises(ModelFileError, match=match):
                    loader(path)


# -- pickles are never unpickled ----------------------------------------------------------------


class TouchOnUnpickle:
    """Unpickling this creates ``marker``: the proof that a loader ran a pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


class ExecOnUnpickle:
    """Unpickling this runs Python code that creates ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [TouchOnUnpickle, ExecOnUnpickle])
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_a_pickle_renamed_to_safetensors_is_refused_and_never_unpickled(
    tmp_path, payload, protocol
):
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(payload(control), protocol=protocol))
    assert control.exists(), "the payload must be live for this test to mean anything"

    marker = tmp_path / "marker"
    pickled = pickle.dumps({"0.weight": payload(marker)}, protocol=protocol)
    for raw, match in [
        (pickled, r"not a safetensors file"),
        # behind a length field that fits the file, the pickle is a header that is not JSON
        (assemble(pickled), r"header is not valid JSON"),
    ]:
        path = write(tmp_path, raw)
        for loader in LOADERS.values():
            with pytest.raises(ModelFileError, match=match):
                loader(path)
    assert not marker.exists()


def test_a_torch_save_zip_renamed_to_safetensors_is_refused_and_never_unpickled(tmp_path):
    torch = pytest.importorskip("torch")
    control = tmp_path / "control-marker"
    torch.save({"payload": TouchOnUnpickle(control)}, tmp_path / "control.pt")
    torch.load(tmp_path / "control.pt", weights_only=False)
    assert control.exists(), "the payload must be live for this test to mean anything"

    marker = tmp_path / "marker"
    path = tmp_path / "model.safetensors"
    torch.save({"0.weight": torch.zeros(4, 3), "payload": TouchOnUnpickle(marker)}, path)
    assert path.read_bytes()[:4] == b"PK\x03\x04"  # a zip archive, as torch writes it
    for loader in LOADERS.values():
        with pytest.raises(ModelFileError, match=r"not a safetensors file"):
            loader(path)
    assert not marker.exists()


def test_names_in_a_file_are_looked_up_never_imported(tmp_path, files):
    """A file naming a module (here ``this``, which prints when imported) imports nothing."""
    assert "this" not in sys.modules
    cases = [
        (
            "model",
            "minigrad.architecture",
            {"class": "this", "config": {}},
            r"names the layer class 'this', which is not registered",
        ),
        (
            "checkpoint",
            "minigrad.optimizer",
            {"class": "this", "hyperparameters": {}, "counts": [], "parameters": []},
            r"names the optimizer class 'this', which is not registered",
        ),
        (
            "checkpoint",
            "minigrad.rng",
            {"bit_generator": "this", "state": {}},
            r"names its bit generator, one of .*; got 'this'",
        ),
    ]
    for kind, key, value, match in cases:
        with pytest.raises(ModelFileError, match=match):
            LOAD_KIND[kind](write(tmp_path, with_json(files[kind], key, value)))
    assert "this" not in sys.modules


# -- minigrad metadata: format, architecture ----------------------------------------------------


@pytest.mark.parametrize("kind", list(LOAD_KIND))
@pytest.mark.parametrize(
    ("changes", "match"),
    [
        pytest.param(
            {"minigrad.format_version": "2"},
            r"file format version '2'; this minigrad reads version 1",
            id="version-2",
        ),
        pytest.param(
            {"minigrad.format_version": "1.0"}, r"file format version '1\.0'", id="version-1.0"
        ),
        pytest.param(
            {"minigrad.format_version": None}, r"file format version None", id="no-version"
        ),
        pytest.param(
            {"minigrad.format": None},
            r"not a minigrad \w+ file \(no minigrad architecture in its metadata",
            id="no-format",
        ),
        pytest.param(
            {"minigrad.format": "Model"}, r"not a minigrad \w+ file \(no minigrad", id="format"
        ),
        pytest.param(
            {"minigrad.architecture": None},
            r"the metadata has no 'minigrad\.architecture' entry",
            id="no-architecture",
        ),
        pytest.param(
            {"minigrad.architecture": '{"class": "Sequential", "layers": ['},
            r"minigrad\.architecture is not valid JSON",
            id="architecture-invalid-json",
        ),
        pytest.param(
            {"minigrad.architecture": "[" * 100_000},
            r"minigrad\.architecture is not valid JSON",
            id="architecture-deep-nesting",
        ),
        pytest.param(
            {"minigrad.architecture": "{" + '"a":{' * 100_000 + "}" * 100_001},
            r"minigrad\.architecture is not valid JSON",
            id="architecture-deep-objects",
        ),
        pytest.param(
            {
                "minigrad.architecture": '{"class": "Sequential", "layers": [' * 300
                + json.dumps(TANH)
                + "]}" * 300
            },
            r"architecture(\.layers\[0\])+: containers nested more than 32 deep",
            id="architecture-nested-300",
        ),
    ],
)
def test_bad_minigrad_metadata_is_a_model_file_error(tmp_path, files, kind, changes, match):
    with pytest.raises(ModelFileError, match=match):
        LOAD_KIND[kind](write(tmp_path, with_metadata(files[kind], changes)))


def test_a_model_file_and_a_checkpoint_are_told_apart_with_the_call_that_loads_each(
    tmp_path, files
):
    with pytest.raises(
        ModelFileError,
        match=r"not a minigrad model file \(it is a minigrad checkpoint file; its model is "
        r"minigrad\.load_checkpoint\(path\)\.model\)",
    ):
        mg.load(write(tmp_path, files["checkpoint"]))
    with pytest.raises(
        ModelFileError,
        match=r"not a minigrad checkpoint file \(it is a minigrad model file; load it with "
        r"minigrad\.load\(path\)\)",
    ):
        mg.load_checkpoint(write(tmp_path, files["model"]))


@pytest.mark.parametrize("metadata", [None, {"format": "pt"}])
def test_a_torch_style_file_needs_load_tensors(tmp_path, metadata):
    rng = np.random.default_rng(0)
    tensors = {
        "0.weight": rng.standard_normal((4, 3)).astype(np.float32),
        "0.bias": rng.standard_normal(4).astype(np.float32),
        "2.weight": rng.standard_normal((2, 4)).astype(np.float64),
    }
    path = write(tmp_path, safetensors_numpy.save(tensors, metadata=metadata))
    with pytest.raises(
        ModelFileError,
        match=r"not a minigrad model file \(no minigrad architecture .*load_tensors\(path\)",
    ):
        mg.load(path)
    with pytest.raises(ModelFileError, match=r"not a minigrad checkpoint file \(no minigrad"):
        mg.load_checkpoint(path)
    loaded = mg.load_tensors(path)
    assert sorted(loaded) == sorted(tensors)
    for name, array in tensors.items():
        np.testing.assert_array_equal(loaded[name], array)
        assert loaded[name].dtype == array.dtype


ARCHITECTURE_CASES = [
    # classes that are not registered, including dotted paths to real objects
    *[
        pytest.param(
            sequential(dense(3, 4), {"class": name, "config": {}}, dense(4, 2)),
            rf"architecture\.layers\[1\] names the layer class '{name}', which is not "
            r"registered; known: \[",
            id=f"class-{name}",
        )
        for name in [
            "os.system",
            "Evil",
            "__import__",
            "builtins.eval",
            "minigrad.layers.Dense",
            "minigrad.Tanh",
            "Layer",
            "Activation",
            "Parameter",
            "dense",
            "",
        ]
    ],
    pytest.param(
        {"class": "Evil", "config": {"command": "rm -rf /"}},
        r"architecture names the layer class 'Evil', which is not registered",
        id="top-level-class-Evil",
    ),
    # the wrong JSON types
    *[
        pytest.param(
            description,
            r"architecture must be an object with a string 'class'",
            id=f"architecture-{name}",
        )
        for name, description in [
            ("list", [dense(3, 4), TANH, dense(4, 2)]),
            ("string", "Sequential"),
            ("null", None),
            ("number", 3),
            ("class-list", {"class": ["Sequential"], "layers": []}),
            ("class-null", {"class": None, "layers": []}),
            ("no-class", {"layers": [dense(3, 4), TANH, dense(4, 2)]}),
        ]
    ],
    pytest.param(
        sequential(dense(3, 4), "Tanh", dense(4, 2)),
        r"architecture\.layers\[1\] must be an object with a string 'class'",
        id="layer-string",
    ),
    *[
        pytest.param(
            description,
            r"architecture: a Sequential is described by 'class' and a 'layers' list",
            id=f"sequential-{name}",
        )
        for name, description in [
            ("layers-string", {"class": "Sequential", "layers": "Dense"}),
            ("layers-object", {"class": "Sequential", "layers": {"0": TANH}}),
            ("layers-null", {"class": "Sequential", "layers": None}),
            ("no-layers", {"class": "Sequential"}),
            ("extra-key", {**ARCHITECTURE, "config": {}}),
        ]
    ],
    *[
        pytest.param(
            sequential(dense(3, 4), TANH, layer),
            rf"architecture\.layers\[2\]: a {layer['class']} is described by 'class' and a "
            r"'config' object",
            id=f"config-{name}",
        )
        for name, layer in [
            ("list", {"class": "Dense", "config": [4, 2]}),
            ("string", {"class": "Dense", "config": "in_features=4"}),
            ("null", {"class": "Dense", "config": None}),
            ("missing", {"class": "Tanh"}),
            ("extra-key", {**TANH, "init": "os.system"}),
        ]
    ],
    *[
        pytest.param(
            sequential(dense(3, 4), TANH, dense(value, 2)),
            rf"architecture\.layers\[2\]: cannot build Dense from .*in_features must be a "
            rf"positive integer, got {re.escape(repr(value))}",
            id=f"in_features-{name}",
        )
        for name, value in [
            ("string", "4"),
            ("bool", True),
            ("negative", -4),
            ("zero", 0),
            ("float", 4.0),
            ("null", None),
            ("list", [4]),
        ]
    ],
    pytest.param(
        sequential(dense(3, 4), TANH, dense(4, "2")),
        r"cannot build Dense from .*out_features must be a positive integer, got '2'",
        id="out_features-string",
    ),
    pytest.param(
        sequential(dense(3, 4), TANH, {"class": "Dense", "config": {"out_features": 2}}),
        r"architecture\.layers\[2\]: cannot build Dense from \{'out_features': 2\}",
        id="config-missing-key",
    ),
    pytest.param(
        sequential(dense(3, 4), TANH, dense(4, 2, evil=1)),
        r"cannot build Dense from .*a Dense config has the keys",
        id="config-unknown-key",
    ),
    pytest.param(
        sequential(dense(3, 4), TANH, dense(4, 2, init="os.system")),
        r"cannot build Dense from .*a Dense config has the keys",
        id="config-init",
    ),
    *[
        pytest.param(
            sequential(dense(3, 4), TANH, dense(4, 2, dtype=dtype)),
            r"cannot build Dense from ",
            id=f"dtype-{dtype}",
        )
        # "a": a NumPy alias that is deprecated (a DeprecationWarning, not an error)
        for dtype in ["object", "int64", "bool", "not a dtype", "V8", "U4", "a", 4, [1]]
    ],
    pytest.param(
        sequential(dense(3, 4), TANH, dense(4, 2, dtype=None)),
        # NumPy reads dtype None as float64: refused when building, or when the tensors load
        r"cannot build Dense from .*'dtype': None"
        r"|do not fit the architecture: .*has dtype float32, but the parameter has dtype float64",
        id="dtype-null",
    ),
    pytest.param(
        sequential(dense(3, 4), {"class": "LeakyReLU", "config": {"negative_slope": "steep"}}),
        r"cannot build LeakyReLU from ",
        id="leaky-relu-string",
    ),
    pytest.param(
        sequential(dense(3, 4), {"class": "LeakyReLU", "config": {"negative_slope": 10**400}}),
        r"cannot build LeakyReLU from ",
        id="leaky-relu-huge-int",
    ),
    pytest.param(
        sequential(dense(3, 4), {"class": "LeakyReLU", "config": {"negative_slope": float("nan")}}),
        r"cannot build LeakyReLU from .*must be finite",
        id="leaky-relu-nan",
    ),
    pytest.param(
        sequential(dense(3, 4), {"class": "Softmax", "config": {"axis": "1"}}),
        r"cannot build Softmax from .*axis must be an integer",
        id="softmax-axis-string",
    ),
    pytest.param(
        sequential(dense(3, 4), {"class": "Tanh", "config": {"x": 1}}),
        r"cannot build Tanh from ",
        id="tanh-config",
    ),
    pytest.param(
        sequential(dense(3, 4), TANH, dense(5, 2)),
        r"(layers\[2\]|layer 2).*5 input features",
        id="widths-do-not-chain",
    ),
]


def nested(depth: int) -> dict[str, Any]:
    description: dict[str, Any] = TANH
    for _ in range(depth):
        description = sequential(description)
    return description


ARCHITECTURE_CASES.append(
    pytest.param(nested(40), r"containers nested more than 32 deep", id="nested-40")
)


@pytest.mark.parametrize("kind", list(LOAD_KIND))
@pytest.mark.parametrize(("architecture", "match"), ARCHITECTURE_CASES)
def test_a_bad_architecture_is_a_model_file_error(tmp_path, files, kind, architecture, match):
    raw = with_json(files[kind], "minigrad.architecture", architecture)
    with pytest.raises(ModelFileError, match=match):
        LOAD_KIND[kind](write(tmp_path, raw))


@pytest.mark.parametrize("kind", list(LOAD_KIND))
@pytest.mark.parametrize(
    "architecture",
    [
        pytest.param(sequential(dense(10**12, 10**12), TANH, dense(10**12, 2)), id="10**12"),
        pytest.param(sequential(dense(2**31, 2**31), TANH, dense(2**31, 2)), id="2**31"),
        pytest.param(sequential(dense(3, 2**62), TANH, dense(2**62, 2)), id="2**62"),
        pytest.param(sequential(dense(3, 10**30), TANH, dense(10**30, 2)), id="10**30"),
        pytest.param(sequential(dense(3, 4), TANH, dense(4, 2**40, bias=False)), id="2**40"),
    ],
)
def test_absurd_dimensions_are_refused_quickly(tmp_path, files, kind, architecture):
    path = write(tmp_path, with_json(files[kind], "minigrad.architecture", architecture))
    start = time.perf_counter()
    with pytest.raises(ModelFileError, match=r"cannot build Dense from \{'in_features': "):
        LOAD_KIND[kind](path)
    assert time.perf_counter() - start < 2.0


#: Loads a file in a fresh interpreter; prints the error and how far the peak memory rose.
MEASURE_LOAD = """
import resource, sys, time
import minigrad as mg
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
try:
    getattr(mg, sys.argv[2])(sys.argv[1])
except mg.ModelFileError as error:
    rise = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    print(rise // 1024, time.perf_counter() - start)
    print(error)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="ru_maxrss is in KiB on Linux")
@pytest.mark.parametrize("kind", list(LOAD_KIND))
def test_a_width_whose_zeros_the_system_grants_is_refused_without_touching_them(
    tmp_path, files, kind
):
    """16384 x 16384 float32 zeros (1 GiB) are granted lazily; the load must not write them."""
    architecture = sequential(dense(3, 16384), TANH, dense(16384, 16384), TANH, dense(16384, 2))
    path = write(tmp_path, with_json(files[kind], "minigrad.architecture", architecture))
    loader = {"model": "load", "checkpoint": "load_checkpoint"}[kind]
    result = subprocess.run(
        [sys.executable, "-c", MEASURE_LOAD, str(path), loader],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout + result.stderr
    rise_mib, seconds = lines[0].split()
    assert "the tensors do not fit the architecture" in lines[1] or "cannot build" in lines[1]
    assert int(rise_mib) < 128, f"loading touched {rise_mib} MiB"
    assert float(seconds) < 1.0


def _drop(key):
    def change(tensors):
        del tensors[key]

    return change


def _add(key, array):
    def change(tensors):
        tensors[key] = array

    return change


def _map(key, function):
    def change(tensors):
        tensors[key] = function(tensors[key])

    return change


@pytest.mark.parametrize("kind", list(LOAD_KIND))
@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param(
            _drop("2.bias"),
            r"do not fit the architecture: .*missing keys \['2\.bias'\]",
            id="missing",
        ),
        pytest.param(
            _add("3.weight", np.zeros((2, 2), np.float32)),
            r"do not fit the architecture: .*unexpected keys \['3\.weight'\]",
            id="extra",
        ),
        pytest.param(
            _add("0.weight.__class__", np.zeros(1, np.float32)),
            r"unexpected keys \['0\.weight\.__class__'\]",
            id="extra-dunder",
        ),
        pytest.param(
            _map("0.weight", lambda a: np.ascontiguousarray(a.T)),
            r"state_dict\['0\.weight'\] has shape \(3, 4\), but the parameter has shape \(4, 3\)",
            id="transposed",
        ),
        pytest.param(
            _map("0.weight", lambda a: a.reshape(-1)),
            r"state_dict\['0\.weight'\] has shape \(12,\), but the parameter has shape \(4, 3\)",
            id="flattened",
        ),
        pytest.param(
            _map("2.bias", lambda a: a.astype(np.float64)),
            r"state_dict\['2\.bias'\] has dtype float64, but the parameter has dtype float32",
            id="float64",
        ),
        pytest.param(
            _map("0.weight", lambda a: a.astype(np.float16)),
            r"state_dict\['0\.weight'\] has dtype float16, but the parameter has dtype float32",
            id="float16",
        ),
        pytest.param(
            _map("2.bias", lambda a: a.astype(np.int64)),
            r"state_dict\['2\.bias'\] has dtype int64, but the parameter has dtype float32",
            id="int64",
        ),
    ],
)
def test_tensors_that_do_not_fit_the_architecture_are_a_model_file_error(
    tmp_path, files, kind, change, match
):
    raw = with_tensors(files[kind], change, PREFIX[kind])
    with pytest.raises(ModelFileError, match=match):
        LOAD_KIND[kind](write(tmp_path, raw))


@pytest.mark.parametrize("kind", list(LOAD_KIND))
@pytest.mark.parametrize(
    ("architecture", "match"),
    [
        pytest.param(
            sequential(dense(3, 4, dtype="float64"), TANH, dense(4, 2, dtype="float64")),
            r"has dtype float32, but the parameter has dtype float64",
            id="float64",
        ),
        pytest.param(
            sequential(dense(3, 4), TANH, dense(4, 2, bias=False)),
            r"unexpected keys \['2\.bias'\]",
            id="no-bias",
        ),
        pytest.param(
            sequential(dense(3, 4), TANH, dense(4, 2), TANH, dense(2, 2)),
            r"missing keys \['4\.weight', '4\.bias'\]",
            id="one-more-layer",
        ),
        pytest.param(
            sequential(dense(3, 4), dense(4, 2)),
            r"missing keys \['1\.weight', '1\.bias'\], unexpected keys \['2\.\w+', '2\.\w+'\]",
            id="shifted",
        ),
        pytest.param(
            sequential(dense(3, 5), TANH, dense(5, 2)),
            r"has shape \(4, 3\), but the parameter has shape \(5, 3\)",
            id="wider",
        ),
    ],
)
def test_an_architecture_that_does_not_fit_the_tensors_is_a_model_file_error(
    tmp_path, files, kind, architecture, match
):
    raw = with_json(files[kind], "minigrad.architecture", architecture)
    with pytest.raises(ModelFileError, match=rf"do not fit the architecture: .*{match}"):
        LOAD_KIND[kind](write(tmp_path, raw))


# -- checkpoint metadata ------------------------------------------------------------------------


def _set(path: tuple, value: Any):
    """A change to a parsed JSON document: ``value`` at ``path`` (keys and indexes)."""

    def change(document):
        document = copy.deepcopy(document)
        if not path:
            return value
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = value
        return document

    return change


def _without(key: str):
    def change(document):
        return {k: v for k, v in document.items() if k != key}

    return change


def _philox(**changes: Any) -> dict[str, Any]:
    state = np.random.Philox(0).state
    state = json.loads(json.dumps(state, default=lambda a: a.tolist()))
    state.update(changes)
    return state


OPTIMIZER_ERROR = r"minigrad\.optimizer"
CHECKPOINT_CASES = [
    *[
        pytest.param(
            "minigrad.optimizer",
            _set(("class",), name),
            rf"{OPTIMIZER_ERROR} names the optimizer class {name!r}, which is not registered; "
            r"known: \[",
            id=f"optimizer-class-{name}",
        )
        for name in ["Evil", "os.system", "minigrad.optim.SGD", "Optimizer", "adam", 5, None]
    ],
    *[
        pytest.param(
            "minigrad.optimizer",
            change,
            rf"{OPTIMIZER_ERROR} must hold class, hyperparameters, counts and parameters",
            id=f"optimizer-{name}",
        )
        for name, change in [
            ("string", _set((), "Adam")),
            ("list", _set((), ["Adam"])),
            ("null", _set((), None)),
            ("no-counts", _without("counts")),
            ("no-parameters", _without("parameters")),
            ("extra-key", _set(("code",), "import os")),
        ]
    ],
    *[
        pytest.param(
            "minigrad.optimizer",
            _set(("hyperparameters", *path), value),
            rf"{OPTIMIZER_ERROR}: cannot build Adam: {match}",
            id=f"hyperparameter-{name}",
        )
        for name, path, value, match in [
            ("negative-lr", ("lr",), -0.01, r"(learning rate|lr) must be a finite number >= 0"),
            ("nan-lr", ("lr",), float("nan"), r"(learning rate|lr) must be a finite number >= 0"),
            ("inf-lr", ("lr",), float("inf"), r"(learning rate|lr) must be a finite number >= 0"),
            ("string-lr", ("lr",), "fast", r"learning rate must be a real number, got 'fast'"),
            ("null-lr", ("lr",), None, r""),
            ("list-lr", ("lr",), [0.01], r""),
            ("huge-int-lr", ("lr",), 10**400, r""),
            ("negative-eps", ("eps",), -1.0, r"eps must be a finite number > 0"),
            ("one-beta", ("betas",), [0.9], r"betas must be a pair"),
            ("beta-above-1", ("betas",), [1.5, 0.999], r"betas\[0\] must be in \[0, 1\)"),
            ("beta-string", ("betas",), "0.9,0.999", r"betas must be a pair"),
            ("extra", ("momentum",), 0.9, r".*momentum"),
            ("params", ("params",), [], r""),
        ]
    ],
    pytest.param(
        "minigrad.optimizer",
        lambda o: {
            **o,
            "hyperparameters": {k: v for k, v in o["hyperparameters"].items() if k != "eps"},
        },
        rf"{OPTIMIZER_ERROR}: .*missing \['eps'\]",
        id="hyperparameter-missing",
    ),
    *[
        pytest.param(
            "minigrad.optimizer",
            _set((key,), value),
            rf"{OPTIMIZER_ERROR}: hyperparameters must be an object, counts a list",
            id=f"{key}-{type(value).__name__}",
        )
        for key, value in [
            ("hyperparameters", [0.01]),
            ("hyperparameters", "lr=0.01"),
            ("counts", "1"),
            ("counts", {"0": {"step": 1}}),
        ]
    ],
    *[
        pytest.param(
            "minigrad.optimizer",
            _set(("counts",), value),
            rf"{OPTIMIZER_ERROR}: counts must hold one object per parameter",
            id=f"counts-{name}",
        )
        for name, value in [
            ("empty", []),
            ("ints", [1, 1, 1, 1]),
            ("too-many", [{"step": 1}] * 5),
        ]
    ],
    *[
        pytest.param(
            "minigrad.optimizer",
            _set(("counts", 0, "step"), value),
            rf"{OPTIMIZER_ERROR}: the saved state does not fit Adam: optimizer state 'step' of "
            rf"parameter 0 must be an integer count >= 0, got {re.escape(repr(value))}",
            id=f"step-{name}",
        )
        for name, value in [
            ("string", "1"),
            ("negative", -1),
            ("float", 1.5),
            ("bool", True),
            ("null", None),
            ("list", [1]),
        ]
    ],
    pytest.param(
        "minigrad.optimizer",
        _set(("counts", 0), {"steps": 1}),
        r"optimizer state of parameter 0 has keys \['m', 'steps', 'v'\], expected "
        r"\['m', 'step', 'v'\]",
        id="counts-wrong-key",
    ),
    *[
        pytest.param(
            "minigrad.optimizer",
            _set(("parameters",), value),
            rf"{OPTIMIZER_ERROR}: its parameters .* are not the model's",
            id=f"parameters-{name}",
        )
        for name, value in [
            ("other", ["a"]),
            ("string", "0.weight"),
            ("null", None),
        ]
    ],
    # the optimizer's order may differ from the model's (param groups), but the state saved
    # for each position must then fit that position's parameter
    pytest.param(
        "minigrad.optimizer",
        _set(("parameters",), ["2.bias", "2.weight", "0.bias", "0.weight"]),
        rf"{OPTIMIZER_ERROR}: the saved state does not fit Adam: .* has shape",
        id="parameters-reversed",
    ),
    *[
        pytest.param(
            "minigrad.progress",
            _set((), value),
            r"minigrad\.progress must hold counts 'epoch' and 'step'",
            id=f"progress-{name}",
        )
        for name, value in [
            ("negative-epoch", {"epoch": -1, "step": 1}),
            ("negative-step", {"epoch": 2, "step": -1}),
            ("float-epoch", {"epoch": 1.5, "step": 1}),
            ("string-epoch", {"epoch": "2", "step": 1}),
            ("bool-epoch", {"epoch": True, "step": 1}),
            ("null-epoch", {"epoch": None, "step": 1}),
            ("no-step", {"epoch": 2}),
            ("extra-key", {"epoch": 2, "step": 1, "lr": 0.1}),
            ("list", [2, 1]),
            ("null", None),
        ]
    ],
    *[
        pytest.param(
            "minigrad.rng",
            _set((), value),
            rf"minigrad\.rng: a generator state names its bit generator, one of "
            rf"\['PCG64', 'PCG64DXSM'\]; got {got}",
            id=f"rng-{name}",
        )
        for name, value, got in [
            (
                "MT19937",
                {"bit_generator": "MT19937", "state": {"key": [0] * 624, "pos": 624}},
                "'MT19937'",
            ),
            ("os", {"bit_generator": "os", "state": {}}, "'os'"),
            ("os.system", {"bit_generator": "os.system", "state": {}}, "'os\\.system'"),
            ("dotted", {"bit_generator": "numpy.random.PCG64", "state": {}}, "'numpy"),
            ("RandomState", {"bit_generator": "RandomState", "state": {}}, "'RandomState'"),
            ("int", {"bit_generator": 5, "state": {}}, "5"),
            ("missing", {"state": {"state": 1, "inc": 1}}, "None"),
            ("list", ["PCG64", 1, 1], "None"),
            ("string", "PCG64", "None"),
            ("number", 0, "None"),
        ]
    ],
    *[
        pytest.param(
            "minigrad.rng",
            change,
            rf"minigrad\.rng: a (generator|{generator}) state",
            id=f"rng-{name}",
        )
        for name, generator, change in [
            ("state-string", "PCG64", _set(("state",), "x")),
            ("state-list", "PCG64", _set(("state",), [1, 2])),
            ("no-inc", "PCG64", _set(("state",), {"state": 1})),
            ("negative", "PCG64", _set(("state", "state"), -1)),
            ("too-big", "PCG64", _set(("state", "state"), 2**200)),
            ("has_uint32", "PCG64", _set(("has_uint32",), "x")),
            ("uinteger", "PCG64", _set(("uinteger",), -1)),
            ("no-state", "PCG64", _set((), {"bit_generator": "PCG64"})),
            (
                "sfc64-short",
                "SFC64",
                _set(
                    (),
                    {
                        "bit_generator": "SFC64",
                        "state": {"state": [1, 2]},
                        "has_uint32": 0,
                        "uinteger": 0,
                    },
                ),
            ),
            (
                "philox-short-counter",
                "Philox",
                _set((), _philox(state={"counter": [0, 0, 0], "key": [1, 2]})),
            ),
            ("philox-huge-buffer-pos", "Philox", _set((), _philox(buffer_pos=10**30))),
            # NumPy accepts this Philox state and then reads far outside its buffer (a crash):
            # only PCG64 states, whose fields are checked one by one, are restored
            ("philox-negative-buffer-pos", "Philox", _set((), _philox(buffer_pos=-(10**8)))),
        ]
    ],
    *[
        pytest.param(
            "minigrad.history",
            _set((), value),
            r"minigrad\.history must map names to lists of numbers",
            id=f"history-{name}",
        )
        for name, value in [
            ("string-value", {"loss": ["x"]}),
            ("bool-value", {"loss": [True]}),
            ("null-value", {"loss": [None]}),
            ("nested", {"loss": [[1.0]]}),
            ("object-value", {"loss": [{"v": 1.0}]}),
            ("not-a-list", {"loss": 1.0}),
            ("list", [1.0, 0.5]),
            ("string", "loss"),
            ("null", None),
            ("huge-int", {"loss": [10**400]}),
        ]
    ],
]


@pytest.mark.parametrize(("key", "change", "match"), CHECKPOINT_CASES)
def test_bad_checkpoint_metadata_is_a_model_file_error(tmp_path, files, key, change, match):
    saved = json.loads(metadata_of(files["checkpoint"])[key])
    raw = with_json(files["checkpoint"], key, change(saved))
    with pytest.raises(ModelFileError, match=match):
        mg.load_checkpoint(write(tmp_path, raw))


def test_a_valid_state_of_each_bit_generator_is_restored(tmp_path, files):
    """The counterpart of the rng cases: a well-formed state of each kind loads and draws."""
    for generator in (np.random.PCG64(3), np.random.PCG64DXSM(3)):
        expected = np.random.Generator(generator)
        expected.random(3)
        state = json.loads(json.dumps(expected.bit_generator.state, default=lambda a: a.tolist()))
        checkpoint = mg.load_checkpoint(
            write(tmp_path, with_json(files["checkpoint"], "minigrad.rng", state))
        )
        assert checkpoint.generator().random(5).tolist() == expected.random(5).tolist()


@pytest.mark.parametrize(
    "key",
    [
        "minigrad.optimizer",
        "minigrad.progress",
        "minigrad.rng",
        "minigrad.history",
        "minigrad.architecture",
    ],
)
def test_missing_or_unparsable_checkpoint_metadata_is_a_model_file_error(tmp_path, files, key):
    escaped = key.replace(".", r"\.")
    for value, match in [
        (None, rf"the metadata has no '{escaped}' entry"),
        ("{", rf"{escaped} is not valid JSON"),
        ("", rf"{escaped} is not valid JSON"),
        ("[" * 100_000, rf"{escaped} is not valid JSON"),
    ]:
        raw = with_metadata(files["checkpoint"], {key: value})
        with pytest.raises(ModelFileError, match=match):
            mg.load_checkpoint(write(tmp_path, raw))


F32 = np.float32


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param(
            _add("evil", np.zeros(1, F32)),
            r"unexpected tensors \['evil'\] in a checkpoint",
            id="stray",
        ),
        pytest.param(
            _add("optimizer", np.zeros(1, F32)),
            r"unexpected tensors \['optimizer'\] in a checkpoint",
            id="stray-optimizer",
        ),
        *[
            pytest.param(
                _add(name, np.zeros((4, 3), F32)),
                rf"unexpected optimizer tensor {name!r}".replace(".", r"\."),
                id=f"buffer-{name}",
            )
            for name in [
                "optimizer.9.m",
                "optimizer.4.m",
                "optimizer.x.m",
                "optimizer.-1.m",
                "optimizer.0",
                "optimizer.0.",
                "optimizer.\u00b2.m",  # a digit to str.isdigit, not to int()
            ]
        ],
        pytest.param(
            _add("optimizer.00.m", np.ones((4, 3), F32)),
            r"optimizer\.00\.m",
            id="buffer-alias-00",
        ),
        pytest.param(
            _add("optimizer.0.x", np.zeros((4, 3), F32)),
            r"does not fit Adam: optimizer state of parameter 0 has keys \['m', 'step', 'v', 'x'\]",
            id="buffer-extra",
        ),
        pytest.param(
            _drop("optimizer.0.m"),
            r"does not fit Adam: optimizer state of parameter 0 has keys \['step', 'v'\], "
            r"expected \['m', 'step', 'v'\]",
            id="buffer-missing",
        ),
        pytest.param(
            _map("optimizer.0.m", lambda a: np.ascontiguousarray(a.T)),
            r"optimizer state 'm' of parameter 0 has shape \(3, 4\) and dtype float32, "
            r"expected \(4, 3\) and float32",
            id="buffer-shape",
        ),
        pytest.param(
            _map("optimizer.3.v", lambda a: a.astype(np.float64)),
            r"optimizer state 'v' of parameter 3 has shape \(2,\) and dtype float64",
            id="buffer-dtype",
        ),
        pytest.param(
            _add("optimizer.0.step", np.zeros(1, F32)),
            r"optimizer state 'step' of parameter 0 must be an integer count",
            id="buffer-for-a-count",
        ),
        pytest.param(
            _drop("model.0.bias"),
            r"do not fit the architecture: .*missing keys \['0\.bias'\]",
            id="model-tensor-missing",
        ),
    ],
)
def test_checkpoint_tensors_that_do_not_fit_are_a_model_file_error(tmp_path, files, change, match):
    raw = with_tensors(files["checkpoint"], change)
    with pytest.raises(ModelFileError, match=match):
        mg.load_checkpoint(write(tmp_path, raw))


# -- values no model can use: NaN, infinities, negative second moments ---------------------


def _set(name: str, index: tuple[int, ...], value: float):
    def change(tensors):
        tensors[name] = tensors[name].copy()
        tensors[name][index] = value

    return change


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_a_parameter_holding_nan_or_inf_is_a_model_file_error_naming_file_and_tensor(
    tmp_path, files, kind, value
):
    name = PREFIX[kind] + "2.weight"
    path = write(tmp_path, with_tensors(files[kind], _set(name, (1, 3), value)))
    with pytest.raises(
        ModelFileError,
        match=rf"^{re.escape(str(path))}: tensor {re.escape(repr(name))} holds {value} at "
        r"index \(1, 3\); a minigrad file holds finite values only",
    ):
        LOAD_KIND[kind](path)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("buffer", ["optimizer.1.m", "optimizer.3.v"])
def test_an_optimizer_buffer_holding_nan_or_inf_is_a_model_file_error(
    tmp_path, files, buffer, value
):
    path = write(tmp_path, with_tensors(files["checkpoint"], _set(buffer, (0,), value)))
    with pytest.raises(
        ModelFileError,
        match=rf"^{re.escape(str(path))}: tensor {re.escape(repr(buffer))} holds {value} at "
        r"index \(0,\)",
    ):
        mg.load_checkpoint(path)


def test_a_negative_second_moment_of_adam_is_a_model_file_error(tmp_path, files):
    path = write(tmp_path, with_tensors(files["checkpoint"], _set("optimizer.2.v", (1, 2), -0.5)))
    with pytest.raises(
        ModelFileError,
        match=rf"^{re.escape(str(path))}: tensor 'optimizer\.2\.v' holds -0\.5 at index "
        r"\(1, 2\); Adam's second moments \(averages of squared gradients\) cannot be negative",
    ):
        mg.load_checkpoint(path)
    # the first moments may be negative
    path = write(tmp_path, with_tensors(files["checkpoint"], _set("optimizer.2.m", (1, 2), -0.5)))
    assert mg.load_checkpoint(path).optimizer.state_dict()["state"][2]["m"][1, 2] == -0.5


@mg.register_layer
class PositiveGain(mg.Layer):
    """A user layer whose load_state_dict refuses a gain <= 0, as a layer checks its state."""

    def __init__(self) -> None:
        super().__init__()
        self.gain = mg.Parameter(np.ones(2, np.float32))

    def forward(self, x):
        return x * self.gain.value

    def backward(self, grad_output):
        return grad_output * self.gain.value

    def load_state_dict(self, state):
        if (np.asarray(state["gain"]) <= 0).any():
            raise ValueError(f"gain must be > 0, got {np.asarray(state['gain']).min()}")
        super().load_state_dict(state)


@pytest.mark.parametrize("kind", ["model", "checkpoint"])
def test_a_value_error_of_a_layer_s_load_state_dict_is_a_model_file_error_naming_the_file(
    tmp_path, kind
):
    model = PositiveGain()
    path = tmp_path / f"{kind}.safetensors"
    if kind == "model":
        mg.save(model, path)
    else:
        mg.save_checkpoint(path, model, mg.SGD(model.parameters()))
    path.write_bytes(with_tensors(path.read_bytes(), _set(PREFIX[kind] + "gain", (1,), -1.0)))
    with pytest.raises(
        ModelFileError, match=rf"^{re.escape(str(path))}: .*gain must be > 0, got -1\.0"
    ) as info:
        LOAD_KIND[kind](path)
    assert type(info.value.__cause__) is ValueError


# -- messages stay short, whatever the file holds ---------------------------------------------

#: A message names the file and what is wrong; values from the file are quoted in part only.
MESSAGE_ROOM = 1500
HUGE = "x" * 1_000_000


def _header(change):
    """A change to the parsed safetensors header of a model file."""

    def rewrite(raw: bytes) -> bytes:
        header, data = split(raw)
        change(header)
        return assemble(header, data)

    return rewrite


def _first_tensor(field: str, value: Any):
    def change(header):
        name = next(k for k in header if k != "__metadata__")
        header[name][field] = value

    return change


def _rename_first_tensor(new: str):
    def change(header):
        name = next(k for k in header if k != "__metadata__")
        header[new] = header.pop(name)

    return change


def _json(key: str, change):
    def rewrite(raw: bytes) -> bytes:
        return with_json(raw, key, change(json.loads(metadata_of(raw)[key])))

    return rewrite


MANY = 20_000
LONG_MESSAGE_CASES = [
    pytest.param(
        "model",
        lambda raw: with_tensors(
            raw, lambda t: t.update({f"extra.{i}": np.zeros(1, F32) for i in range(MANY)})
        ),
        rf"unexpected keys \[.*\] and {MANY - 5} more",
        id="many-unexpected-tensors",
    ),
    pytest.param(
        "checkpoint",
        lambda raw: with_tensors(
            raw, lambda t: t.update({f"stray.{i}": np.zeros(1, F32) for i in range(MANY)})
        ),
        rf"unexpected tensors \[.*\] and {MANY - 5} more in a checkpoint",
        id="many-stray-tensors",
    ),
    pytest.param(
        "checkpoint",
        lambda raw: with_tensors(
            raw,
            lambda t: t.update({f"optimizer.0.b{i}": np.zeros((4, 3), F32) for i in range(MANY)}),
        ),
        r"the saved state does not fit Adam: optimizer state of parameter 0 has keys .*\.\.\.$",
        id="many-optimizer-buffers",
    ),
    pytest.param(
        "model",
        lambda raw: with_json(raw, "minigrad.architecture", sequential({"class": HUGE})),
        r"names the layer class 'xxx+\.\.\., which is not registered",
        id="huge-class-name",
    ),
    pytest.param(
        "model",
        lambda raw: with_json(raw, "minigrad.architecture", sequential(dense(3, 4, **{HUGE: 1}))),
        r"cannot build Dense from \{'in_features': 3, .*\.\.\.: a Dense config has the keys",
        id="huge-config-key",
    ),
    pytest.param(
        "model",
        lambda raw: with_json(
            raw,
            "minigrad.architecture",
            sequential(dense(3, 4, **{f"k{i}": i for i in range(MANY)}), TANH),
        ),
        r"cannot build Dense from \{'in_features': 3, .*\.\.\.: a Dense config has the keys",
        id="many-config-keys",
    ),
    pytest.param(
        "model",
        lambda raw: with_metadata(raw, {"minigrad.format_version": HUGE}),
        r"file format version 'xxx+\.\.\.; this minigrad reads version 1",
        id="huge-version",
    ),
    pytest.param(
        "model",
        _header(_first_tensor("dtype", HUGE)),
        r"has dtype 'xxx+\.\.\.; minigrad reads",
        id="huge-dtype",
    ),
    pytest.param(
        "model",
        _header(_first_tensor("shape", list(range(MANY)))),
        r"has shape \[0, 1, 2, .*\.\.\.; expected a list of at most 8",
        id="huge-shape",
    ),
    pytest.param(
        "model",
        _header(_first_tensor("data_offsets", list(range(MANY)))),
        r"has data_offsets \[0, 1, .*\.\.\.; expected \[begin, end\]",
        id="huge-offsets",
    ),
    pytest.param(
        "model",
        _header(_rename_first_tensor(HUGE)),
        r"unexpected keys \['xxx+\.\.\.\]",
        id="huge-tensor-name",
    ),
    pytest.param(
        "checkpoint",
        _json("minigrad.optimizer", lambda o: {**o, "class": [HUGE]}),
        r"names the optimizer class \['xxx+\.\.\., which is not registered",
        id="huge-optimizer-class",
    ),
    pytest.param(
        "checkpoint",
        _json("minigrad.optimizer", lambda o: {**o, "parameters": [str(i) for i in range(MANY)]}),
        rf"its parameters \['0', '1', '2', '3', '4'\] and {MANY - 5} more are not the model's",
        id="many-parameter-names",
    ),
    pytest.param(
        "checkpoint",
        _json(
            "minigrad.optimizer",
            lambda o: {**o, "hyperparameters": {**o["hyperparameters"], **{HUGE: 1}}},
        ),
        r"cannot build Adam: ",
        id="huge-hyperparameter-name",
    ),
    pytest.param(
        "checkpoint",
        _json("minigrad.rng", lambda r: {**r, "bit_generator": HUGE}),
        r"names its bit generator, one of .*; got 'xxx+\.\.\.$",
        id="huge-bit-generator",
    ),
]


@pytest.mark.parametrize(("kind", "rewrite", "match"), LONG_MESSAGE_CASES)
def test_a_message_about_a_hostile_file_stays_short(tmp_path, files, kind, rewrite, match):
    path = write(tmp_path, rewrite(files[kind]))
    with pytest.raises(ModelFileError, match=match) as info:
        LOAD_KIND[kind](path)
    assert len(str(info.value)) < len(str(path)) + MESSAGE_ROOM, len(str(info.value))


# -- property tests: random mutations of valid files --------------------------------------------

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.sampled_from(
        [
            0,
            -1,
            1,
            2,
            3,
            4,
            5,
            2**31,
            2**63,
            10**12,
            10**400,
            1e400,
            "F16",
            "F32",
            "F64",
            "I64",
            "BF16",
            "Dense",
            "Sequential",
            "Tanh",
            "Softmax",
            "LeakyReLU",
            "Evil",
            "os.system",
            "float16",
            "float64",
            "object",
            "SGD",
            "AdamW",
            "Philox",
            "MT19937",
            "model",
            "checkpoint",
            "1",
            "2",
            [],
            {},
        ]
    ),
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)


def _paths(value: Any, path: tuple = ()) -> list[tuple]:
    """Every path (keys and indexes) into a JSON value, the root's included."""
    found = [path]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*path, index))
    return found


def _embedded(metadata: Any) -> list[str]:
    """The metadata keys whose values are JSON documents."""
    keys = []
    for key, value in metadata.items() if isinstance(metadata, dict) else ():
        try:
            json.loads(value)
        except (TypeError, ValueError):
            continue
        keys.append(key)
    return keys


def _variants(value: Any) -> st.SearchStrategy:
    """Values near ``value``: the same thing of another JSON type, or a neighbouring number or
    string (these reach the checks behind the first type checks)."""
    near: list[Any] = [[value], {"value": value}, str(value), None, True, "x" * 100_000]
    near += [[value] * 400]  # a long list where one value was: messages must not list it all
    if isinstance(value, int) and not isinstance(value, bool):
        near += [value + 1, value - 1, -value, 0, value * 2**32, 10**400]
        near += [float(value)] if abs(value) < 2**1000 else []
    elif isinstance(value, float):
        near += [-value, 0.0, float("nan"), float("inf"), 10**400]
        near += [int(value)] if math.isfinite(value) else []
    elif isinstance(value, str):
        near += ["", value.lower(), value + "x", value[:-1]]
    elif isinstance(value, list):
        near += [value[:-1], [*value, value[-1] if value else 0], value[::-1]]
    elif isinstance(value, dict):
        near += [dict(list(value.items())[:-1]), {**value, "extra": 1}]
    return st.sampled_from(near)


@st.composite
def json_rewrites(draw, raw: bytes) -> bytes:
    """``raw`` with one value in its header (or in a JSON metadata entry) replaced, deleted or
    its key renamed; the length field is rewritten to fit."""
    try:
        header, data = split(raw)
    except ValueError:
        return raw
    header = copy.deepcopy(header)
    metadata = header.get("__metadata__", {}) if isinstance(header, dict) else None
    embedded = _embedded(metadata)
    target = draw(st.sampled_from(["header", *embedded, *embedded]))
    document = header if target == "header" else json.loads(metadata[target])
    paths = _paths(document)
    leaves = [p for p in paths if not any(q[: len(p)] == p and q != p for q in paths)]
    path = draw(st.sampled_from(leaves) | st.sampled_from(paths))
    action = draw(st.sampled_from(["replace", "replace", "replace", "delete", "rename"]))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    original = parent[path[-1]] if path else document
    new = draw(
        st.sampled_from([True, True, False]).flatmap(
            lambda near: _variants(original) if near else JSON_VALUES
        )
    )
    note(f"rewrite {target} at {path}: {action} {new!r}")
    if not path:
        document = new
    elif action == "replace":
        parent[path[-1]] = new
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[draw(st.text(max_size=12))] = parent.pop(path[-1])
    else:
        parent.insert(draw(st.integers(0, len(parent))), parent.pop(path[-1]))
    if target != "header":
        header["__metadata__"][target] = json.dumps(document)
        return assemble(header, data)
    return assemble(document, data)


@st.composite
def byte_mutations(draw, raw: bytes) -> bytes:
    """``raw`` with bytes overwritten, flipped, inserted or deleted, cut short, or its length
    field rewritten; the position may be anywhere or in the header (the truncation test covers
    every cut, so cuts are rarer here)."""
    if len(raw) <= 8:
        return raw + draw(st.binary(min_size=1, max_size=8))
    header_end = min(len(raw), 8 + int.from_bytes(raw[:8], "little"))
    region = draw(st.sampled_from(["anywhere", "header", "header"]))
    start, end = (0, len(raw)) if region == "anywhere" or header_end <= 8 else (8, header_end)
    position = draw(st.integers(start, end - 1))
    kind = draw(
        st.sampled_from(
            [
                *("overwrite", "flip", "insert", "delete", "digit", "digit", "json", "json"),
                *("truncate", "set-length"),
            ]
        )
    )
    note(f"{kind} in {region} at {position}")
    if kind == "overwrite":
        value = draw(st.binary(min_size=1, max_size=4))
        return raw[:position] + value + raw[position + len(value) :]
    if kind == "flip":
        flipped = raw[position] ^ (1 << draw(st.integers(0, 7)))
        return raw[:position] + bytes([flipped]) + raw[position + 1 :]
    if kind == "truncate":
        return raw[:position]
    if kind == "insert":
        return raw[:position] + draw(st.binary(min_size=1, max_size=16)) + raw[position:]
    if kind == "delete":
        return raw[:position] + raw[position + draw(st.integers(1, 16)) :]
    if kind == "set-length":
        length = int.from_bytes(raw[:8], "little")
        new = draw(
            st.integers(0, 2**64 - 1)
            | st.integers(-16, 16).map(lambda d: min(max(0, length + d), 2**64 - 1))
        )
        return new.to_bytes(8, "little") + raw[8:]
    if kind == "digit":  # a digit in the header becomes another: widths, shapes, offsets
        digits = [i for i in range(8, header_end) if chr(raw[i]).isdigit()]
        if not digits:
            return raw
        at = draw(st.sampled_from(digits))
        return raw[:at] + str(draw(st.integers(0, 9))).encode() + raw[at + 1 :]
    # "json": an ASCII JSON token in the header replaced by another one
    token = draw(st.sampled_from([b"true", b"false", b"null", b"[]", b"{}", b'"', b",", b"-"]))
    at = draw(st.integers(8, max(8, header_end - 1)))
    return raw[:at] + token + raw[at + draw(st.integers(0, len(token))) :]


@st.composite
def mutated_files(draw, raw: bytes) -> bytes:
    """``raw`` after JSON rewrites, byte mutations, or both."""
    mode = draw(st.sampled_from(["json", "json", "json", "bytes", "both"]))
    if mode != "bytes":
        for _ in range(draw(st.integers(1, 2))):
            raw = draw(json_rewrites(raw))
    if mode != "json":
        for _ in range(draw(st.integers(1, 3))):
            raw = draw(byte_mutations(raw))
    return raw


def _check_model(model: Any, original: dict[str, np.ndarray]) -> None:
    """``model`` is a working layer with the original's parameter names, shapes and dtypes."""
    assert isinstance(model, mg.Layer)
    state = model.state_dict()
    assert list(state) == list(original)
    for key, value in state.items():
        assert value.shape == original[key].shape
        assert value.dtype == original[key].dtype
    with np.errstate(all="ignore"):
        assert model(np.zeros((2, 3), np.float32)).shape == (2, 2)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_randomly_mutated_model_file_loads_well_formed_or_is_a_model_file_error(
    files, scratch, data
):
    raw = data.draw(mutated_files(files["model"]), label="file")
    path = write(scratch, raw)
    try:
        model = mg.load(path)
    except ModelFileError as error:
        assert len(str(error)) < len(str(path)) + MESSAGE_ROOM
        return
    _check_model(model, small_model().state_dict())


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_a_randomly_mutated_checkpoint_loads_well_formed_or_is_a_model_file_error(
    files, scratch, data
):
    raw = data.draw(mutated_files(files["checkpoint"]), label="file")
    path = write(scratch, raw, "checkpoint.safetensors")
    try:
        checkpoint = mg.load_checkpoint(path)
    except ModelFileError as error:
        assert len(str(error)) < len(str(path)) + MESSAGE_ROOM
        return
    _check_model(checkpoint.model, small_model().state_dict())
    assert isinstance(checkpoint.optimizer, mg.Optimizer)
    assert [id(p) for p in checkpoint.optimizer.params] == [
        id(p) for p in checkpoint.model.parameters()
    ]
    assert type(checkpoint.epoch) is int and checkpoint.epoch >= 0
    assert type(checkpoint.step) is int and checkpoint.step >= 0
    assert all(
        isinstance(name, str) and all(type(v) is float for v in values)
        for name, values in checkpoint.history.items()
    )
    if checkpoint.rng_state is not None:
        assert isinstance(checkpoint.generator(), np.random.Generator)


@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_load_tensors_of_a_mutated_file_gives_float_arrays_or_a_model_file_error(
    files, scratch, data
):
    raw = data.draw(mutated_files(files["model"]), label="file")
    path = write(scratch, raw)
    try:
        tensors = mg.load_tensors(path)
    except ModelFileError as error:
        assert len(str(error)) < len(str(path)) + MESSAGE_ROOM
        return
    assert all(isinstance(name, str) for name in tensors)
    assert all(
        isinstance(a, np.ndarray)
        and a.dtype in (np.float16, np.float32, np.float64)
        and a.flags.writeable
        for a in tensors.values()
    )


def test_a_generator_whose_state_cannot_be_checked_is_refused_at_save(tmp_path, files):
    model = mg.Sequential(mg.Dense(2, 2, rng=0))
    optimizer = mg.SGD(model.parameters(), lr=0.1)
    for bit_generator in (np.random.Philox(0), np.random.SFC64(0), np.random.MT19937(0)):
        name = type(bit_generator).__name__
        with pytest.raises(ValueError, match=rf"PCG64.*got {name}"):
            mg.save_checkpoint(
                tmp_path / "c.safetensors", model, optimizer,
                rng=np.random.Generator(bit_generator),
            )  # fmt: skip
    assert not (tmp_path / "c.safetensors").exists()
