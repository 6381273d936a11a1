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


def stop_writing_half_way(monkeypatch, exception: BaseException) -> None:
    """Make the temporary file of the next save raise ``exception`` half-way through its
    write (the file is opened with the built-in open, looked up in minigrad._files)."""
    real_open = open

    class Interrupting:
        def __init__(self, file):
            self.file = file

        def __getattr__(self, name):
            return getattr(self.file, name)

        def write(self, content):
            self.file.write(content[: len(content) // 2])
            raise exception

    monkeypatch.setattr(
        _files, "open", lambda *a, **k: Interrupting(real_open(*a, **k)), raising=False
    )


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
        stop_writing_half_way(monkeypatch, exception("stop"))
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


def open_descriptors() -> dict[str, str]:
    """This process's open descriptors and what each refers to (Linux's /proc/self/fd)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[name] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # the descriptor listdir itself used
            pass
    return found


needs_proc = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="lists descriptors through /proc"
)


@needs_proc
@pytest.mark.parametrize("point", ["open", "lock", "check", "chmod"])
def test_ctrl_c_right_after_the_temporary_file_is_made_closes_and_removes_it(
    tmp_path, monkeypatch, point
):
    path = tmp_path / "m.safetensors"
    mg.save(model(0), path)
    original = path.read_bytes()
    before = open_descriptors()

    def interrupting(real):
        calls = []

        def call(*args, **kwargs):
            result = real(*args, **kwargs)
            calls.append(1)
            if len(calls) == 1:
                raise KeyboardInterrupt
            return result

        return call

    if point == "open":  # the file is made, but the interrupt comes as open() returns it
        real_open = open

        def made_then_interrupted(*args, **kwargs):
            real_open(*args, **kwargs).close()  # as dropping the returned file object would
            raise KeyboardInterrupt

        monkeypatch.setattr(_files, "open", made_then_interrupted, raising=False)
    elif point == "lock":  # the lock just taken
        monkeypatch.setattr(_files, "_lock", interrupting(_files._lock))
    elif point == "check":  # the check that no cleanup took the new file
        monkeypatch.setattr(_files, "_is_same_file", interrupting(_files._is_same_file))
    else:  # the narrowing of its mode
        monkeypatch.setattr(os, "fchmod", interrupting(os.fchmod))
    with pytest.raises(KeyboardInterrupt):
        mg.save(model(1), path)
    monkeypatch.undo()
    assert open_descriptors() == before  # the temporary file's descriptor, and its lock, are gone
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert path.read_bytes() == original
    mg.save(model(2), path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]
    assert same(mg.load(path), model(2))


#: Saves again and again while a thread sends the process SIGINT every millisecond or so;
#: prints what is left: interrupts, temporary files, locks and new descriptors.
SAVE_UNDER_CTRL_C = """
import json, os, random, signal, sys, threading, time
import minigrad as mg

path = sys.argv[1]
armed = False

def handler(signum, frame):  # Ctrl-C, but only inside mg.save, so that the loop goes on
    if armed:
        raise KeyboardInterrupt

def descriptors():
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[name] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:
            pass
    return found

def access(name):
    for line in open(f"/proc/self/fdinfo/{name}"):
        if line.startswith("flags:"):
            return int(line.split()[1], 8) & os.O_ACCMODE

signal.signal(signal.SIGINT, handler)
model = mg.Sequential(mg.Dense(2, 64, rng=0), mg.Tanh(), mg.Dense(64, 1, rng=0))
mg.save(model, path)
before = descriptors()
stop = False

def send():
    rng = random.Random(0)
    while not stop:
        time.sleep(rng.uniform(0, 0.001))
        os.kill(os.getpid(), signal.SIGINT)

thread = threading.Thread(target=send)
thread.start()
interrupted = saves = 0
while interrupted < 300 and saves < 20000:
    saves += 1
    try:
        armed = True
        mg.save(model, path)
        armed = False
    except KeyboardInterrupt:
        armed = False
        interrupted += 1
stop = True
thread.join()
mg.save(model, path)
after = descriptors()
new = [(after[n], access(n)) for n in after if before.get(n) != after[n]]
locks = [line for line in open("/proc/locks") if f" {os.getpid()} " in line]
folder = os.path.dirname(path)
temporaries = [n for n in os.listdir(folder) if n.endswith(".tmp")]
print(json.dumps({"interrupted": interrupted, "new": new, "locks": locks,
                  "temporaries": temporaries}))
"""


@needs_proc
def test_saves_under_a_storm_of_real_sigints_leave_no_temporary_file_and_no_lock(tmp_path):
    path = tmp_path / "m.safetensors"
    child = run_python(SAVE_UNDER_CTRL_C, str(path))
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    report = json.loads(out)
    assert report["interrupted"] == 300
    assert report["temporaries"] == []
    assert report["locks"] == []
    # An interrupt in the instant os.open returns can still drop a read-only descriptor of
    # the folder (or of a leftover being removed): Python gives no way to close that window.
    # Never one that writes, never one of a temporary file that is still there.
    for target, access in report["new"]:
        assert access == os.O_RDONLY, (target, access)
        assert ".tmp" not in target or target.endswith(" (deleted)"), target
    # How often that instant is hit depends on the machine's load: rare, not never.
    assert len(report["new"]) < report["interrupted"] / 10


# -- case 2: every failure names the target, not the temporary file --------------------------


@pytest.mark.parametrize("step", ["lookup", "folder", "temporary", "folder sync"])
def test_every_failure_of_a_save_names_the_target_and_chains_the_system_error(
    tmp_path, monkeypatch, step
):
    path = tmp_path / "runs" / "m.safetensors"
    if step == "lookup":  # a folder the process may not search
        expected, code = PermissionError, errno.EACCES
        match = r"Permission denied \(while looking up .*runs\)"
        real_stat = os.stat

        def refuse(where, *args, **kwargs):
            if str(where).endswith("runs"):
                raise PermissionError(errno.EACCES, "Permission denied", str(where))
            return real_stat(where, *args, **kwargs)

        monkeypatch.setattr(os, "stat", refuse)
    elif step == "folder":
        expected, code = PermissionError, errno.EACCES
        match = r"Permission denied \(while creating the folder .*runs for it\)"

        def refuse(folder, *args, **kwargs):
            raise PermissionError(errno.EACCES, "Permission denied", str(folder))

        monkeypatch.setattr(os, "mkdir", refuse)
    elif step == "temporary":  # a failure while the temporary file is being made
        path.parent.mkdir()
        expected, code = FileNotFoundError, errno.ENOENT
        match = r"No such file or directory \(while writing .*m\.safetensors through a temporary"
        real_lock = _files._lock

        def refuse(*args, **kwargs):
            raise FileNotFoundError(errno.ENOENT, "No such file or directory", "x.tmp")

        monkeypatch.setattr(_files, "_lock", lambda *a, **k: refuse() if real_lock(*a, **k) else 0)
    else:
        path.parent.mkdir()
        expected, code = OSError, errno.EIO
        match = r"Input/output error \(after renaming the new file to .*m\.safetensors, while sy"
        real_fsync = os.fsync

        def fsync(descriptor):
            if stat.S_ISDIR(os.fstat(descriptor).st_mode):
                raise OSError(errno.EIO, "Input/output error")
            real_fsync(descriptor)

        monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(expected, match=match) as info:
        mg.save(model(0), path)
    assert info.value.errno == code
    assert info.value.filename == str(path)
    assert ".tmp" not in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    monkeypatch.undo()
    if path.parent.exists():
        assert temporaries(path.parent) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux's /proc")
@pytest.mark.parametrize("folder", ["/proc", "/proc/self"])
def test_a_save_into_proc_names_the_target(folder):
    path = f"{folder}/x.safetensors"
    with pytest.raises(OSError, match=r"\(while writing /proc/.*x\.safetensors through") as info:
        mg.save(model(0), path)
    assert info.value.filename == path
    assert ".tmp" not in str(info.value)
    assert ".tmp" in str(info.value.__cause__)  # the system's own error, chained


# -- case 5: deep paths ------------------------------------------------------------------------


def remove_chain(top: Path) -> None:
    """Remove a chain of nested folders (one folder in each, files at any level) without
    recursion, which shutil.rmtree (and so pytest's cleanup) needs, and through descriptors,
    so that each removal looks up one name rather than the whole deep path."""
    descriptors = [os.open(top, os.O_RDONLY | os.O_DIRECTORY)]
    names = []
    try:
        while True:
            folders = []
            with os.scandir(descriptors[-1]) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.name)
                    else:
                        os.unlink(entry.name, dir_fd=descriptors[-1])
            assert len(folders) <= 1, folders
            if not folders:
                break
            names.append(folders[0])
            flags = os.O_RDONLY | os.O_DIRECTORY
            descriptors.append(os.open(folders[0], flags, dir_fd=descriptors[-1]))
        for name in reversed(names):
            os.close(descriptors.pop())
            os.rmdir(name, dir_fd=descriptors[-1])
    finally:
        for descriptor in descriptors:
            os.close(descriptor)
    top.rmdir()


def test_a_deep_legal_path_saves_and_a_too_long_one_is_refused_before_any_folder_is_made(
    tmp_path,
):
    path_max = os.pathconf(tmp_path, "PC_PATH_MAX")
    # more missing folders than recursion would take (each one costs a millisecond to remove)
    depth = min(sys.getrecursionlimit() + 100, (path_max - len(str(tmp_path)) - 100) // 2)
    assert depth > sys.getrecursionlimit()
    path = tmp_path / ("d/" * depth + "m.safetensors")
    try:
        mg.save(model(0), path)
        assert same(mg.load(path), model(0))
        mg.save(model(1), path)
        assert same(mg.load(path), model(1))
        assert temporaries(path.parent) == []
    finally:
        if (tmp_path / "d").exists():
            remove_chain(tmp_path / "d")

    too_long = tmp_path / ("e/" * (path_max // 2) + "m.safetensors")
    with pytest.raises(OSError, match=r"Path too long: \d+ bytes .*this system allows") as info:
        mg.save(model(0), too_long)
    assert info.value.errno == errno.ENAMETOOLONG
    assert info.value.filename == str(too_long)
    assert not (tmp_path / "e").exists()
    folder_name = tmp_path / ("f" * 300) / "m.safetensors"
    with pytest.raises(OSError, match=r"Folder name 'fff.* too long: 300 bytes") as info:
        mg.save(model(0), folder_name)
    assert info.value.errno == errno.ENAMETOOLONG
    assert list(tmp_path.iterdir()) == []


# -- case 8: a file replaced by root keeps its owner --------------------------------------------


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="only root may give files away"
)
def test_root_replacing_another_user_s_file_keeps_its_owner_group_and_mode(tmp_path):
    paths = write_each_kind(tmp_path)
    for path in paths.values():
        os.chown(path, 12345, 12346)
        path.chmod(0o640)
    write_each_kind(tmp_path)
    found = {}
    for kind, path in paths.items():
        status = path.stat()
        found[kind] = (status.st_uid, status.st_gid, stat.S_IMODE(status.st_mode))
    assert found == {kind: (12345, 12346, 0o640) for kind in paths}
    assert temporaries(tmp_path) == []
    new = tmp_path / "new.safetensors"
    mg.save(model(0), new)
    assert (new.stat().st_uid, new.stat().st_gid) == (os.geteuid(), os.getegid())


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


@pytest.mark.parametrize("reader", ["load", "load_checkpoint", "read_idx"])
def test_a_read_error_that_names_no_file_is_raised_naming_the_file(tmp_path, monkeypatch, reader):
    if reader == "read_idx":
        path = tmp_path / "labels-idx1-ubyte"
        path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 7, 1]))
        module, load = "minigrad.data.mnist", mg.data.read_idx
    else:
        path = tmp_path / "m.safetensors"
        net = model(0)
        if reader == "load":
            mg.save(net, path)
        else:
            mg.save_checkpoint(path, net, mg.SGD(net.parameters(), lr=0.1))
        module, load = "minigrad.serialization.safetensors_file", getattr(mg, reader)

    def failing_read(*args):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(f"{module}.read_exactly", failing_read)
    with pytest.raises(OSError, match=r"Input/output error \(while reading .*") as info:
        load(path)
    assert info.value.errno == errno.EIO
    assert info.value.filename == str(path)
    assert info.value.__cause__.filename is None


# -- message helpers ------------------------------------------------------------------------


def test_listings_and_quotes_stay_short():
    assert _files.listing(["a", "b"]) == "['a', 'b']"
    assert _files.listing(range(100)) == "[0, 1, 2, 3, 4] and 95 more"
    assert _files.quoted("x" * 1000) == "'" + "x" * 76 + "..."
    assert len(_files.listing(["y" * 10**6] * 10**5)) < 500
    assert _files.error_text(KeyError("units")) == "KeyError: 'units'"
    assert _files.error_text(ValueError("v" * 10**5)).endswith("...")
