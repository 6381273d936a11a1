"""Files minigrad writes and reads: atomic saves that leave nothing behind, modes, long names,
durability, concurrent and killed writers; readers that refuse pipes and devices and never
read more than a file's header allows."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import minigrad as mg
from minigrad import _files
from minigrad.errors import ModelFileError

pytest.importorskip("safetensors")
fcntl = pytest.importorskip("fcntl")  # the locks that tell a live writer from a dead one

SRC = str(Path(mg.__file__).resolve().parents[1])


def model(seed: int = 0, width: int = 3) -> mg.Sequential:
    return mg.Sequential(mg.Dense(2, width, rng=seed), mg.Tanh(), mg.Dense(width, 1, rng=seed))


def same(a: mg.Layer, b: mg.Layer) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(np.array_equal(sa[k], sb[k]) for k in sa)


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def run_python(code: str, *args: str) -> subprocess.Popen:
    """A fresh interpreter running ``code`` with this checkout's minigrad first on the path."""
    env = {**os.environ, "PYTHONPATH": SRC, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


# -- case 5: a killed save leaves a temporary file, which the next save removes -----------------

#: Saves a wide model, but stops for good at the fsync (the file is written, not yet renamed)
#: after saying so in a marker file: the parent then kills it with SIGKILL.
SAVE_AND_HANG = """
import os, sys, time
import minigrad as mg
path, marker = sys.argv[1], sys.argv[2]

def hang(descriptor):
    open(marker, "w").close()
    time.sleep(120)

os.fsync = hang
model = mg.Sequential(mg.Dense(2, 300, rng=7), mg.Tanh(), mg.Dense(300, 1, rng=7))
mg.save(model, path)
"""


def wait_for(path: Path, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the writer ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the writer never reached the fsync")
        time.sleep(0.01)


def test_a_save_killed_mid_write_leaves_the_old_file_and_the_next_save_removes_its_leftover(
    tmp_path,
):
    path, marker = tmp_path / "m.safetensors", tmp_path / "marker"
    mg.save(model(0), path)
    writer = run_python(SAVE_AND_HANG, str(path), str(marker))
    wait_for(marker, writer)
    os.kill(writer.pid, signal.SIGKILL)
    writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL
    [leftover] = temporaries(tmp_path)  # what a kill -9 leaves: nothing can prevent it
    assert leftover.startswith(".m.safetensors.")
    assert (tmp_path / leftover).stat().st_size > 300 * 4  # the wide model, written
    assert same(mg.load(path), model(0))  # the old file is intact

    mg.save(model(1), path)
    assert temporaries(tmp_path) == []
    assert same(mg.load(path), model(1))


def test_a_temporary_file_that_a_live_writer_holds_is_left_alone(tmp_path):
    path = tmp_path / "m.safetensors"
    live, dead = tmp_path / ".m.safetensors.abcd1234.tmp", tmp_path / ".m.safetensors.dead0000.tmp"
    other = tmp_path / ".other.safetensors.abcd1234.tmp"  # another target's
    for name in (live, dead, other):
        name.write_bytes(b"partial")
    with open(live, "rb") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)  # as a writer holds its temporary file
        mg.save(model(0), path)
        assert temporaries(tmp_path) == sorted([live.name, other.name])
    mg.save(model(1), path)  # the lock is gone: the writer died
    assert temporaries(tmp_path) == [other.name]
    assert same(mg.load(path), model(1))


#: Saves its own model to one path again and again, from the moment a start file appears.
SAVE_OFTEN = """
import os, sys, time
import minigrad as mg
path, start, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = mg.Sequential(mg.Dense(2, 64, rng=seed), mg.Tanh(), mg.Dense(64, 1, rng=seed))
while not os.path.exists(start):
    time.sleep(0.005)
for _ in range(40):
    mg.save(model, path)
print("done")
"""


def test_processes_saving_one_path_at_once_never_leave_a_broken_file(tmp_path):
    path, start = tmp_path / "shared.safetensors", tmp_path / "start"
    seeds = [1, 2, 3]
    expected = [
        mg.Sequential(mg.Dense(2, 64, rng=s), mg.Tanh(), mg.Dense(64, 1, rng=s)) for s in seeds
    ]
    writers = [run_python(SAVE_OFTEN, str(path), str(start), str(s)) for s in seeds]
    start.touch()
    loads = 0
    while any(w.poll() is None for w in writers):
        if path.exists():
            loaded = mg.load(path)  # every file a reader sees is one writer's, whole
            assert any(same(loaded, e) for e in expected)
            loads += 1
    for writer in writers:
        out, err = writer.communicate(timeout=60)
        assert writer.returncode == 0 and out.strip() == "done", err
    assert any(same(mg.load(path), e) for e in expected)
    assert temporaries(tmp_path) == []
    assert loads > 0


# -- case 6: modes, and the folder fsynced after the rename --------------------------------------


def write_each_kind(folder: Path) -> dict[str, Path]:
    """A model file, a checkpoint, an ONNX graph and a history log, written by minigrad."""
    net = model(0)
    paths = {
        "model": folder / "m.safetensors",
        "checkpoint": folder / "c.safetensors",
        "history": folder / "history.csv",
    }
    mg.save(net, paths["model"])
    mg.save_checkpoint(paths["checkpoint"], net, mg.SGD(net.parameters(), lr=0.1))
    x = np.zeros((4, 2), np.float32)
    mg.fit(
        net,
        mg.MSE(),
        mg.SGD(net.parameters(), lr=0.1),
        x,
        np.zeros((4, 1), np.float32),
        epochs=1,
        metrics=(),
        progress=False,
        callbacks=[mg.HistoryLogger(paths["history"])],
    )
    try:
        import onnx  # noqa: F401
    except ImportError:
        pass
    else:
        paths["onnx"] = folder / "m.onnx"
        mg.export_onnx(net, paths["onnx"])
    return paths


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_new_files_get_the_usual_mode_of_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        paths = write_each_kind(tmp_path)
    finally:
        os.umask(old)
    modes = {kind: stat.S_IMODE(path.stat().st_mode) for kind, path in paths.items()}
    assert modes == {kind: 0o666 & ~umask for kind in paths}


def test_a_replaced_file_keeps_its_mode(tmp_path):
    paths = write_each_kind(tmp_path)
    for mode in (0o644, 0o640, 0o600, 0o444):
        for path in paths.values():
            path.chmod(mode)
        write_each_kind(tmp_path)
        modes = {kind: stat.S_IMODE(path.stat().st_mode) for kind, path in paths.items()}
        assert modes == {kind: mode for kind in paths}
    assert temporaries(tmp_path) == []


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    synced = []
    real_fsync = os.fsync

    def recording_fsync(descriptor):
        kind = "folder" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file"
        synced.append((kind, path.exists()))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    mg.save(model(0), path)
    assert synced == [("file", False), ("folder", True)]


# -- case 7: long names --------------------------------------------------------------------------


def name_of(length: int, stem: str = "m") -> str:
    """A file name of ``length`` bytes in UTF-8 ending in .safetensors."""
    suffix = ".safetensors"
    body = stem * ((length - len(suffix)) // len(stem.encode()))
    body += "x" * (length - len(suffix) - len(body.encode()))
    name = body + suffix
    assert len(name.encode()) == length
    return name


def test_names_up_to_the_file_system_limit_save_and_load(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    for length in (limit - 14, limit - 13, limit - 1, limit):
        for stem in ("m", "é", "模"):  # 1, 2 and 3 bytes a character
            path = tmp_path / name_of(length, stem)
            mg.save(model(length), path)
            mg.save(model(length + 1), path)  # the replacement takes the same way
            assert same(mg.load(path), model(length + 1))
            path.unlink()
    assert list(tmp_path.iterdir()) == []


def test_a_leftover_of_a_long_name_is_removed_too(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    path = tmp_path / name_of(limit)
    prefix = _files._temporary_prefix(path.name, limit)
    leftover = tmp_path / f"{prefix}dead0000.tmp"
    leftover.write_bytes(b"partial")
    assert len(leftover.name.encode()) <= limit
    mg.save(model(0), path)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_a_name_over_the_limit_is_an_error_naming_the_target(tmp_path):
    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    path = tmp_path / name_of(limit + 1)
    with pytest.raises(OSError, match=rf"{limit + 1} bytes, where this file system allows") as info:
        mg.save(model(0), path)
    assert info.value.errno == errno.ENAMETOOLONG
    assert info.value.filename == str(path)
    assert ".tmp" not in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_failure_on_the_temporary_file_names_the_target(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    real_replace = os.replace

    def failing_replace(source, destination):
        raise OSError(errno.EIO, "Input/output error", str(source), None, str(destination))

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(
        OSError, match=r"Input/output error \(while writing .*m\.safetensors"
    ) as info:
        mg.save(model(0), path)
    assert info.value.errno == errno.EIO
    assert info.value.filename == str(path)
    assert isinstance(info.value.__cause__, OSError)
    monkeypatch.setattr(os, "replace", real_replace)
    assert list(tmp_path.iterdir()) == []


# -- Ctrl-C and errors at every point of a save -----------------------------------------------


@pytest.mark.parametrize("where", ["write", "fsync", "fchmod", "replace"])
@pytest.mark.parametrize("exception", [KeyboardInterrupt, OSError])
def test_an_interrupted_save_leaves_the_old_file_and_no_temporary(
    tmp_path, monkeypatch, where, exception
):
    path = tmp_path / "m.safetensors"
    mg.save(model(0), path)
    original = path.read_bytes()
    calls = {"fchmod": 0}

    def interrupt(*args, **kwargs):
        raise exception("stop")

    if where == "write":
        real_fdopen = os.fdopen

        class Interrupting:
            def __init__(self, file):
                self.file = file

            def __enter__(self):
                return self

            def __exit__(self, *exc):
                self.file.close()

            def write(self, content):
                self.file.write(content[: len(content) // 2])
                raise exception("stop")

        monkeypatch.setattr(os, "fdopen", lambda *a, **k: Interrupting(real_fdopen(*a, **k)))
    elif where == "fchmod":
        real_fchmod = os.fchmod

        def second_fchmod(descriptor, mode):  # the first narrows, the second sets the mode
            calls["fchmod"] += 1
            if calls["fchmod"] == 2:
                raise exception("stop")
            real_fchmod(descriptor, mode)

        monkeypatch.setattr(os, "fchmod", second_fchmod)
    else:
        monkeypatch.setattr(os, where, interrupt)
    with pytest.raises(exception, match="stop"):
        mg.save(model(1), path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]


# -- case 29: targets that are not files, checked before anything is written ----------------


def save_each_way(path):
    net = model(0)
    return [
        lambda: mg.save(net, path),
        lambda: mg.save_checkpoint(path, net, mg.SGD(net.parameters(), lr=0.1)),
        lambda: _files.write_atomically(path, "text"),
    ]


@pytest.mark.parametrize(
    ("target", "error", "match"),
    [
        ("", ValueError, r"path is empty; give a file name"),
        (".", IsADirectoryError, r"is a folder; give a file name.*'\.'"),
        ("..", IsADirectoryError, r"is a folder"),
        ("{tmp}", IsADirectoryError, r"is a folder"),
        ("{tmp}/sub/", IsADirectoryError, r"ends with a separator"),
        ("{tmp}/file/m.safetensors", NotADirectoryError, r"under .*file, which is a file"),
        ("{tmp}/file/deeper/m.safetensors", NotADirectoryError, r"under .*file, which is a file"),
        ("{tmp}/fifo", ValueError, r"fifo: it is a named pipe \(FIFO\), not a regular file"),
        ("{tmp}/link", ValueError, r"link \(a link to .*fifo\): it is a named pipe"),
        ("a\0b", ValueError, r"path contains a NUL character"),
        (7, TypeError, r"path must be a file path \(str or os\.PathLike\), got 7 \(int\)"),
        (None, TypeError, r"got None \(NoneType\)"),
        (b"m.safetensors", TypeError, r"got b'm\.safetensors' \(bytes\)"),
    ],
)
def test_a_target_that_cannot_be_a_file_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, target, error, match
):
    (tmp_path / "file").write_text("a file")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "link").symlink_to(tmp_path / "fifo")
    monkeypatch.chdir(tmp_path)
    if isinstance(target, str):
        target = target.replace("{tmp}", str(tmp_path))
    before = sorted(os.listdir(tmp_path))
    for save in save_each_way(target):
        with pytest.raises(error, match=match):
            save()
        assert sorted(os.listdir(tmp_path)) == before
        assert stat.S_ISFIFO((tmp_path / "fifo").stat().st_mode)


def test_missing_folders_are_created_and_a_link_is_written_through(tmp_path):
    path = tmp_path / "runs" / "a" / "m.safetensors"
    mg.save(model(0), path)
    assert same(mg.load(path), model(0))
    link = tmp_path / "latest.safetensors"
    link.symlink_to(path)
    mg.save(model(1), link)
    assert link.is_symlink()  # still a link, to the file that was replaced
    assert same(mg.load(path), model(1))


def test_write_atomically_takes_text_or_bytes(tmp_path):
    _files.write_atomically(tmp_path / "a.txt", "é\n")
    assert (tmp_path / "a.txt").read_bytes() == "é\n".encode()
    with pytest.raises(TypeError, match="content must be str or bytes, got list"):
        _files.write_atomically(tmp_path / "b.txt", ["x"])
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


# -- case 8: readers refuse what is not a regular file and read the header first -------------

LOADERS = {
    "load": mg.load,
    "load_checkpoint": mg.load_checkpoint,
    "load_tensors": mg.load_tensors,
    "read_idx": mg.data.read_idx,
}

#: Tries every loader on a FIFO and on a link to /dev/zero, with the memory it may take capped
#: (without the checks, the FIFO blocks for ever and /dev/zero is read until memory runs out).
LOAD_SPECIAL_FILES = """
import json, os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import minigrad as mg
folder = sys.argv[1]
os.symlink("/dev/zero", os.path.join(folder, "zero.safetensors"))
os.mkfifo(os.path.join(folder, "fifo.safetensors"))
loaders = {"load": mg.load, "load_checkpoint": mg.load_checkpoint,
           "load_tensors": mg.load_tensors, "read_idx": mg.data.read_idx}
for target in ("zero.safetensors", "fifo.safetensors"):
    for name, loader in loaders.items():
        try:
            loader(os.path.join(folder, target))
            outcome = ["nothing", ""]
        except BaseException as error:
            outcome = [type(error).__name__, str(error)[:300]]
        print(json.dumps([target, name, *outcome]), flush=True)
"""


def test_a_fifo_or_a_link_to_dev_zero_is_refused_without_reading(tmp_path):
    if not Path("/dev/zero").exists():
        pytest.skip("no /dev/zero")
    process = run_python(LOAD_SPECIAL_FILES, str(tmp_path))
    try:
        out, err = process.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        pytest.fail(f"a load blocked; it got as far as:\n{out}")
    assert process.returncode == 0, err
    outcomes = [json.loads(line) for line in out.splitlines()]
    assert len(outcomes) == 8
    for target, name, error, message in outcomes:
        expected = "ValueError" if name == "read_idx" else "ModelFileError"
        kind = "character device" if target.startswith("zero") else r"named pipe \(FIFO\)"
        link = r" \(a link to /dev/zero\)" if target.startswith("zero") else ""
        assert error == expected, (target, name, error, message)
        assert re.search(rf"{target}{link} is a {kind}, not a regular file", message)


@pytest.mark.parametrize("name", list(LOADERS))
def test_a_folder_is_not_a_file(tmp_path, name):
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        LOADERS[name](tmp_path)


@pytest.mark.parametrize("name", list(LOADERS))
def test_a_path_of_the_wrong_type_is_a_type_error(name):
    for path in (3, None, b"m.safetensors", mg.Dense(1, 1)):  # 3 would open descriptor 3
        with pytest.raises(TypeError, match=r"path must be a file path \(str or os\.PathLike\)"):
            LOADERS[name](path)
    with pytest.raises(ValueError, match="path is empty"):
        LOADERS[name]("")


@pytest.mark.parametrize("name", ["load", "load_checkpoint", "load_tensors"])
@pytest.mark.parametrize("start", [b"\0" * 8, (2**40).to_bytes(8, "little"), b"PK\x03\x04abcd"])
def test_a_large_file_that_is_not_a_model_is_refused_after_its_header(tmp_path, name, start):
    path = tmp_path / "big.safetensors"
    with open(path, "wb") as file:  # 1 GiB, sparse: costs no disk, but a whole read takes 1 GiB
        file.write(start)
        file.truncate(1 << 30)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=re.escape(str(path))):
            LOADERS[name](path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"read {peak} bytes"


def test_a_file_that_changes_while_it_is_read_is_a_model_file_error(tmp_path, monkeypatch):
    path = tmp_path / "m.safetensors"
    mg.save(model(0), path)
    real_read = _files.read_exactly

    def read_then_grow(file, count, where, error):
        data = real_read(file, count, where, error)
        if count > 8:  # the header was read: the file grows before the rest is
            with open(path, "ab") as other:
                other.write(b"\0" * 16)
        return data

    monkeypatch.setattr(
        "minigrad.serialization.safetensors_file.read_exactly", read_then_grow, raising=True
    )
    with pytest.raises(ModelFileError, match="changed while it was being read"):
        mg.load(path)


# -- message helpers ------------------------------------------------------------------------


def test_listings_and_quotes_stay_short():
    assert _files.listing(["a", "b"]) == "['a', 'b']"
    assert _files.listing(range(100)) == "[0, 1, 2, 3, 4] and 95 more"
    assert _files.quoted("x" * 1000) == "'" + "x" * 76 + "..."
    assert len(_files.listing(["y" * 10**6] * 10**5)) < 500
    assert _files.error_text(KeyError("units")) == "KeyError: 'units'"
    assert _files.error_text(ValueError("v" * 10**5)).endswith("...")
