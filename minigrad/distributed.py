"""Data-parallel training over MPI, as PyTorch's DistributedDataParallel does it.

Every rank (process) holds the whole model and the whole data set. ``fit(...,
distributed=True)`` then:

1. checks that every rank holds the same architecture and settings (parameter and buffer
   names, shapes, dtypes and order; the data's shapes, batch size, epochs), then
   broadcasts rank 0's parameters, buffers and shuffling generator to every rank;
2. each epoch, draws one permutation of the n samples from that shared generator (so the
   same on every rank) and gives rank r of N the samples ``order[r::N]``, after padding
   ``order`` to a multiple of N with its own first samples, as ``DistributedSampler`` does
   (:func:`shard`). Every rank gets ceil(n / N) samples, so the same number of batches of
   the same sizes, and batch j of all ranks together is ``order[j N b : (j + 1) N b]``:
   N ranks with ``batch_size=b`` take the steps of one process with ``batch_size=N b``;
3. after each backward, averages the gradients over the ranks with a few ``Allreduce``
   calls on large contiguous buffers (buckets: :class:`GradientBuckets`), so that every rank
   takes the same optimizer step and the parameters stay identical:

       g = (1/N) sum_r g_r,    g_r the gradient of rank r's batch mean.

   Because the ranks' batches have the same size, that is the gradient of the mean over
   all N b samples of the step (the padded duplicates, when N does not divide n, count as
   samples, as in PyTorch);
4. reports the epoch's loss and metrics as sample-weighted means over all ranks, and lets
   only rank 0 draw a progress bar and write files (``TrainingState.rank``).

Faults. A rank that raises during a step (a bad batch, a NaN loss) does not leave the
others waiting in the next ``Allreduce``: it joins that ``Allreduce`` with an error flag
(one extra number in the first bucket, so no extra call), no rank steps, and every rank
raises: the failing rank its own exception, the others :class:`DistributedError` with its
message. The same agreement covers ``fit``'s checks before training and the callbacks at
an epoch's end. Any other exception on one rank (a callback's ``on_batch_end``, Ctrl-C)
cannot be agreed on, so that rank prints its error and calls ``MPI_Abort``, which ends
every rank of the job at once: a bounded stop, never a hang.

BatchNorm keeps per-rank batch statistics, as in DDP; its running statistics (buffers) are
rank 0's, broadcast before every validation pass and checkpoint (DDP broadcasts them before
every forward; the result is the same). There is no synchronized BatchNorm.

MPI comes from mpi4py (``pip install 'minigrad-nn[distributed]'``, which brings mpich as a
wheel); this module imports it only when a :class:`DataParallel` is built.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from minigrad._validation import check_integer
from minigrad.data.loader import DataLoader
from minigrad.errors import DistributedError
from minigrad.layers.base import Layer
from minigrad.parameter import Parameter
from minigrad.typing import FloatArray

__all__ = ["DataParallel", "DistributedLoader", "GradientBuckets", "shard"]

#: Bucket size, as DDP's ``bucket_cap_mb=25``: large enough that the latency of each call is
#: small beside its transfer, small enough that a model gives a few buckets.
BUCKET_BYTES = 25 * 1024 * 1024

#: The attribute that marks an exception every rank raises together (no Abort needed).
AGREED = "_minigrad_on_every_rank"


def mpi() -> Any:
    """The ``mpi4py.MPI`` module, or ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(
            "distributed training needs mpi4py and an MPI library: pip install "
            "'minigrad-nn[distributed]' (mpi4py and mpich as wheels), or on a cluster pip "
            "install mpi4py built against the site's MPI (see the README)"
        ) from error
    return MPI


def shard(order: NDArray[np.intp], rank: int, size: int) -> NDArray[np.intp]:
    """Rank ``rank``'s samples of ``order`` among ``size`` ranks, as DistributedSampler.

    ``order`` is padded to a multiple of ``size`` with its own first entries, then rank r
    takes every ``size``-th entry from r: ``padded[r::size]``, ceil(n / size) samples.

    Shape: order (n,) -> (ceil(n / size),).

    Examples
    --------
    >>> [shard(np.arange(7), r, 3).tolist() for r in range(3)]  # 0 and 1 padded
    [[0, 3, 6], [1, 4, 0], [2, 5, 1]]
    """
    n = len(order)
    padding = -n % size
    if padding:
        order = np.concatenate([order, np.resize(order, padding)])
    return order[rank::size]


class DistributedLoader(DataLoader):
    """A DataLoader over one rank's shard (:func:`shard`) of each epoch's permutation.

    Every rank must hold the same ``x`` and ``y`` and a generator in the same state (``fit``
    broadcasts rank 0's): the permutation is then the same on every rank, and the shards
    cover it. ``len(loader)`` is the same on every rank.

    Examples
    --------
    >>> x = np.arange(10)[:, None]
    >>> [[xb.ravel().tolist() for xb, _ in DistributedLoader(x, x, rank, 2, batch_size=2,
    ...   shuffle=False)] for rank in range(2)]  # batch j of both: rows 4j to 4j + 3
    [[[0, 2], [4, 6], [8]], [[1, 3], [5, 7], [9]]]
    """

    def __init__(
        self,
        x: NDArray[Any],
        y: NDArray[Any] | None,
        rank: int,
        size: int,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int | np.random.Generator | None = None,
    ) -> None:
        super().__init__(x, y, batch_size=batch_size, shuffle=shuffle, seed=seed)
        self.rank = check_integer("rank", rank, minimum=0)
        self.size = check_integer("size", size, minimum=rank + 1)

    def __len__(self) -> int:
        """Batches per epoch, the same on every rank."""
        per_rank = -(-len(self.x) // self.size)  # ceil(n / N)
        return -(-per_rank // self.batch_size)

    def __iter__(self) -> Iterator[tuple[NDArray[Any], NDArray[Any]] | NDArray[Any]]:
        n, size = len(self.x), self.batch_size
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        mine = shard(order, self.rank, self.size)
        for start in range(0, len(mine), size):
            rows = mine[start : start + size]
            yield (self.x[rows], self.y[rows]) if self.y is not None else self.x[rows]

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]}, rank={self.rank}, size={self.size})"


class GradientBuckets:
    """The parameters' gradients packed into a few contiguous buffers, summed over the
    ranks with one ``Allreduce`` per buffer, and written back divided by N.

    Buffers hold gradients of one dtype each, in the parameters' order, up to
    ``bucket_bytes`` (one parameter larger than that gets a buffer of its own). They are
    allocated once, and again only when the set of trainable parameters changes
    (freezing). The first buffer ends with one extra entry, the number of ranks that
    failed in this step (each adds 1 or 0), so agreeing on errors costs no extra call.

    Attributes: ``seconds`` spent in Allreduce, ``bytes`` reduced per rank and ``calls``
    made, counted since the buckets were built (for benchmarks).

    Examples
    --------
    Under ``mpiexec -n 2``, with a gradient of 1 on rank 0 and 3 on rank 1:

    >>> from mpi4py import MPI  # doctest: +SKIP
    >>> p = Parameter(np.zeros(2))
    >>> p.grad[:] = 1 + 2 * MPI.COMM_WORLD.Get_rank()  # doctest: +SKIP
    >>> buckets = GradientBuckets(MPI.COMM_WORLD)  # doctest: +SKIP
    >>> buckets.average([p], failed=False), p.grad, buckets.calls  # doctest: +SKIP
    (0, array([2., 2.]), 1)
    """

    def __init__(self, comm: Any, bucket_bytes: int = BUCKET_BYTES) -> None:
        self.comm, self.bucket_bytes = comm, bucket_bytes
        self._key: tuple[int, ...] = ()
        self._buffers: list[FloatArray] = []
        self._views: list[list[tuple[Parameter, FloatArray]]] = []
        self.seconds, self.bytes, self.calls = 0.0, 0, 0

    def _build(self, params: list[Parameter]) -> None:
        groups: list[list[Parameter]] = []
        for param in params:
            last = groups[-1] if groups else None
            if (
                last is None
                or last[0].dtype != param.dtype
                or sum(p.value.nbytes for p in last) + param.value.nbytes > self.bucket_bytes
            ):
                groups.append([param])
            else:
                last.append(param)
        if not groups:  # nothing to train, but the error flag still needs a place
            groups.append([])
        self._buffers, self._views = [], []
        for index, group in enumerate(groups):
            dtype = group[0].dtype if group else np.dtype(np.float64)
            size = sum(p.size for p in group) + (index == 0)
            buffer = np.zeros(size, dtype)
            views, offset = [], 0
            for param in group:
                views.append((param, buffer[offset : offset + param.size].reshape(param.shape)))
                offset += param.size
            self._buffers.append(buffer)
            self._views.append(views)

    def average(self, params: Sequence[Parameter], failed: bool) -> int:
        """Replace each trainable parameter's ``.grad`` by its mean over the ranks; the number
        of ranks that say they ``failed`` (then the gradients are left as they were)."""
        trainable = [p for p in params if p.requires_grad]
        key = tuple(id(p) for p in trainable)
        if key != self._key:
            self._build(trainable)
            self._key = key
        for views in self._views:
            for param, view in views:
                np.copyto(view, param.grad)
        self._buffers[0][-1] = failed
        start = time.perf_counter()
        for buffer in self._buffers:
            self.comm.Allreduce(mpi().IN_PLACE, buffer)
        self.seconds += time.perf_counter() - start
        self.bytes += sum(buffer.nbytes for buffer in self._buffers)
        self.calls += len(self._buffers)
        failures = round(float(self._buffers[0][-1]))
        if failures:
            return failures
        size = self.comm.Get_size()
        for buffer in self._buffers:
            buffer /= size
        for views in self._views:
            for param, view in views:
                np.copyto(param.grad_to_overwrite(), view)
        return 0


class DataParallel:
    """The ranks of an MPI communicator training one model together (see the module notes).

    ``fit(..., distributed=True)`` builds one on ``MPI.COMM_WORLD``; pass
    ``distributed=DataParallel(comm)`` for another communicator or bucket size.

    Parameters
    ----------
    comm : mpi4py communicator or None
        None: ``MPI.COMM_WORLD``, every process ``mpiexec`` started.
    bucket_bytes : int >= 1, default 25 MiB
        The most bytes of gradients one Allreduce carries (see :class:`GradientBuckets`).

    Attributes
    ----------
    rank, size : int
        This process's rank and the number of ranks.
    buckets : GradientBuckets
        With the time spent in Allreduce and the bytes moved.

    Examples
    --------
    A script run as ``mpiexec -n 2 python train.py`` (each rank prints its line):

    >>> import minigrad as mg
    >>> x, y = mg.data.make_moons(200, noise=0.1, seed=0)
    >>> model = mg.Sequential(mg.Dense(2, 16, rng=0), mg.ReLU(), mg.Dense(16, 2, rng=1))
    >>> parallel = DataParallel()  # doctest: +SKIP
    >>> history = mg.fit(model, mg.CrossEntropy(), mg.Adam(model.parameters(), lr=0.05), x, y,
    ...                  epochs=20, seed=0, progress=False, distributed=parallel)  # doctest: +SKIP
    >>> parallel.rank, parallel.size, history["accuracy"][-1] > 0.8  # doctest: +SKIP
    (0, 2, True)
    """

    def __init__(self, comm: Any = None, bucket_bytes: int = BUCKET_BYTES) -> None:
        # checked before MPI starts: a mistake costs no MPI initialisation
        bucket_bytes = check_integer("bucket_bytes", bucket_bytes, minimum=1)
        if comm is not None and not all(
            callable(getattr(comm, name, None)) for name in ("Get_rank", "Get_size", "Allreduce")
        ):
            raise TypeError(
                "DataParallel comm must be an mpi4py communicator (such as "
                f"MPI.COMM_WORLD) or None, got {type(comm).__name__}"
            )
        self.comm = mpi().COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.buckets = GradientBuckets(self.comm, bucket_bytes)

    def __repr__(self) -> str:
        return f"DataParallel(rank={self.rank}, size={self.size})"

    # -- agreement --------------------------------------------------------------------------

    def agree(self, error: BaseException | None, stop: bool = False) -> bool:
        """Collective: raise on every rank if any rank had an ``error`` (its own on that
        rank, DistributedError naming the first failed rank's on the others); else whether
        any rank asked to ``stop``."""
        message = None if error is None else f"{type(error).__name__}: {error}"
        votes = self.comm.allgather((message, bool(stop)))
        self._raise_failures([rank for rank, (text, _) in enumerate(votes) if text], votes, error)
        return any(asked for _, asked in votes)

    def average_gradients(self, params: Sequence[Parameter], error: BaseException | None) -> None:
        """Collective: every rank's ``.grad`` becomes the mean over the ranks; or, if any
        rank had an ``error`` in this step, every rank raises as in :meth:`agree`."""
        if self.buckets.average(params, error is not None):
            self.agree(error)

    def _raise_failures(
        self, failed: list[int], votes: list[tuple[str | None, bool]], error: BaseException | None
    ) -> None:
        if not failed:
            return
        if error is not None:
            setattr(error, AGREED, True)
            raise error
        first = failed[0]
        others = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        agreed = DistributedError(
            f"rank {first} of {self.size}{others} failed, so every rank stopped: {votes[first][0]}"
        )
        setattr(agreed, AGREED, True)
        raise agreed

    def abort(self, error: BaseException) -> None:
        """Print this rank's error to stderr, then ``MPI_Abort``: every rank of the job ends
        (the way out for an error the other ranks cannot know of, without a hang)."""
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        sys.stderr.write(
            f"minigrad: rank {self.rank} of {self.size} failed; stopping every rank "
            f"(MPI_Abort):\n{text}"
        )
        sys.stderr.flush()
        self.comm.Abort(1)

    # -- the start: same architecture, same values ------------------------------------------

    def check_same(self, model: Layer, settings: dict[str, Any]) -> None:
        """Collective: ValueError on every rank unless every rank's model has the same
        parameters and buffers (names, shapes, dtypes, order) and the same ``settings``."""
        mine = [("settings", repr(sorted(settings.items())))] + [
            (f"{type(item).__name__.lower()} {key!r}", f"shape {item.shape}, dtype {item.dtype}")
            for key, item in model._named_arrays().items()
        ]
        everyone = self.comm.allgather(mine)
        reference = everyone[0]
        for rank, theirs in enumerate(everyone[1:], start=1):
            if theirs == reference:
                continue
            for index in range(max(len(theirs), len(reference))):
                ours = reference[index] if index < len(reference) else ("nothing", "")
                other = theirs[index] if index < len(theirs) else ("nothing", "")
                if ours != other:
                    break
            raise ValueError(
                f"fit(distributed=True): rank {rank}'s model or settings differ from rank 0's "
                f"at entry {index}: rank 0 has {' '.join(ours).strip()}, rank {rank} has "
                f"{' '.join(other).strip()}; every rank must build the same model and call "
                "fit with the same data shapes and arguments"
            )

    def broadcast(self, model: Layer, rng: np.random.Generator | None = None) -> None:
        """Collective: rank 0's parameter and buffer values (and the state of ``rng``) on
        every rank, in place."""
        for item in model._named_arrays().values():
            self.comm.Bcast(item.value, root=0)
        if rng is not None:
            rng.bit_generator.state = self.comm.bcast(rng.bit_generator.state, root=0)

    def broadcast_buffers(self, model: Layer) -> None:
        """Collective: rank 0's buffers (BatchNorm's running statistics) on every rank."""
        for _, buffer in model.named_buffers():
            self.comm.Bcast(buffer.value, root=0)

    def sum(self, values: Sequence[float]) -> list[float]:
        """Collective: each value summed over the ranks, in float64."""
        array = np.asarray(values, dtype=np.float64)
        self.comm.Allreduce(mpi().IN_PLACE, array)
        sums: list[float] = array.tolist()  # typed Any in NumPy's stubs
        return sums


def parallel_from(distributed: object) -> DataParallel | None:
    """fit's ``distributed`` argument as a DataParallel (True: on COMM_WORLD) or None."""
    if isinstance(distributed, DataParallel):
        return distributed
    if distributed is False or distributed is None:
        return None
    if distributed is True:
        return DataParallel()
    raise TypeError(
        f"distributed must be True, False or a minigrad.distributed.DataParallel, got "
        f"{type(distributed).__name__}"
    )
