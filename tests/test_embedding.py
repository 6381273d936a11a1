"""Embedding: lookups of any index shape, the scatter-add of repeated indices, PyTorch as the
oracle, the N(0, 1) initialisation, training it first in a model, files and errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minigrad as mg
from minigrad import Embedding, ShapeError
from minigrad.layers import embedding
from minigrad.testing import check_gradients


@st.composite
def tables_and_indices(draw):
    """A float64 table and integer indices of any shape (repeats likely), of any integer
    type; sometimes more indices than rows, sometimes fewer (the two scatter-add paths)."""
    num = draw(st.integers(1, 12))
    dim = draw(st.integers(1, 4))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5))
    dtype = draw(st.sampled_from([np.int64, np.int32, np.uint8, np.int16, np.uint64]))
    x = draw(hnp.arrays(dtype, shape, elements=st.integers(0, num - 1)))
    layer = Embedding(num, dim, rng=draw(st.integers(0, 2**32 - 1)), dtype=np.float64)
    return layer, x


def scatter_reference(num, dim, x, g):
    """dL/dW by a plain loop over the indices: the sum of g over each index's positions."""
    grad = np.zeros((num, dim))
    for index, row in zip(x.reshape(-1), g.reshape(-1, dim), strict=True):
        grad[index] += row
    return grad


@given(case=tables_and_indices(), seed=st.integers(0, 2**32 - 1))
def test_forward_is_the_lookup_and_backward_adds_up_repeated_indices(case, seed):
    layer, x = case
    y = layer(x)
    assert y.shape == (*x.shape, layer.embedding_dim)
    np.testing.assert_array_equal(y, layer.weight.value[x.astype(np.intp)])
    g = np.random.default_rng(seed).normal(size=y.shape)
    layer.weight.grad[...] = 7.0  # overwritten, not added to
    assert layer.backward(g) is None
    expected = scatter_reference(layer.num_embeddings, layer.embedding_dim, x, g)
    np.testing.assert_allclose(layer.weight.grad, expected, rtol=1e-12, atol=1e-12)


@given(case=tables_and_indices())
def test_the_weight_gradient_matches_finite_differences(case):
    layer, x = case
    if x.size == 0:
        x = np.zeros(3, np.int64)  # repeated: one row used three times
    report = check_gradients(layer, x)  # integer x: indices, not differentiated
    assert set(report.errors) == {"weight"}


def test_a_model_starting_with_an_embedding_is_checked_and_trained():
    model = mg.Sequential(
        Embedding(6, 3, rng=0, dtype=np.float64),
        mg.Tanh(),
        mg.Dense(3, 2, rng=1, dtype=np.float64),
    )
    x = np.array([0, 5, 5, 2, 0])
    report = check_gradients(model, x)
    assert set(report.errors) == {"0.weight", "2.weight", "2.bias"}
    model(x)
    assert model.backward(np.ones((5, 2))) is None
    assert model.backward(np.ones((5, 2)), input_grad=True) is None  # indices: no gradient


@pytest.mark.parametrize(("num", "count"), [(50, 400), (50, 7), (3, 3), (1000, 1)])
def test_both_scatter_paths_add_up_in_the_weight_s_dtype(num, count):
    """np.bincount for at least as many indices as rows, a sort otherwise."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, num, count)
    g = rng.normal(size=(count, 4)).astype(np.float32)
    layer = Embedding(num, 4, rng=0)
    layer(x)
    layer.backward(g)
    assert layer.weight.grad.dtype == np.float32
    expected = scatter_reference(num, 4, x, g.astype(np.float64))
    np.testing.assert_allclose(layer.weight.grad, expected, rtol=1e-6, atol=1e-6)


def test_torch_gives_the_same_outputs_and_gradients_with_repeated_indices(torch):
    rng = np.random.default_rng(1)
    layer = Embedding(20, 5, rng=2, dtype=np.float64)
    twin = torch.nn.Embedding(20, 5)
    twin.load_state_dict({key: torch.from_numpy(v) for key, v in layer.state_dict().items()})
    for count in (7, 300):  # fewer and more indices than rows
        x = rng.integers(0, 20, (count // 7, 7))
        x[0, :3] = 4  # repeated for sure
        g = rng.normal(size=(*x.shape, 5))
        y = twin(torch.from_numpy(x))
        y.backward(torch.from_numpy(g))
        np.testing.assert_array_equal(layer(x), y.detach().numpy())
        layer.backward(g)
        np.testing.assert_allclose(layer.weight.grad, twin.weight.grad.numpy(), rtol=1e-12)
        twin.zero_grad()
    assert list(layer.state_dict()) == list(twin.state_dict()) == ["weight"]
    assert repr(layer) == repr(twin)
    layer.load_state_dict({"weight": twin.weight.detach().numpy() * 2})  # and back


def test_the_default_initialisation_is_torch_s_standard_normal():
    weight = Embedding(1000, 200, rng=0).weight.value.astype(np.float64)
    n = weight.size
    assert abs(weight.mean()) < 6 / np.sqrt(n)  # N(0, 1): mean 0 within 6 standard errors
    assert abs(weight.var() - 1.0) < 6 * np.sqrt(2 / n)  # variance 1, its std. error sqrt(2/n)
    np.testing.assert_array_equal(
        Embedding(3, 2, rng=5).weight.value, Embedding(3, 2, rng=5).weight.value
    )
    assert not np.array_equal(
        Embedding(3, 2, rng=5).weight.value, Embedding(3, 2, rng=6).weight.value
    )


def test_other_initialisers_are_taken_by_name_or_function():
    bound = np.sqrt(6 / (10 + 4))
    assert np.abs(Embedding(10, 4, init="xavier_uniform", rng=0).weight.value).max() <= bound
    layer = Embedding(3, 2, init=lambda shape, rng, dtype: np.full(shape, 0.5, dtype))
    np.testing.assert_array_equal(layer.weight.value, np.full((3, 2), 0.5, np.float32))
    assert Embedding(3, 2, init="Normal", rng=1).weight.value.std() > 0
    with pytest.raises(ValueError, match="Embedding init returned NaN or infinite weights"):
        Embedding(3, 2, init=lambda shape, rng, dtype: np.full(shape, np.nan, dtype))
    with pytest.raises(ValueError, match=r"init returned an array of shape \(2,\), expected"):
        Embedding(3, 2, init=lambda shape, rng, dtype: np.zeros(2))
    with pytest.raises(ValueError, match="unknown init 'uniform'"):
        Embedding(3, 2, init="uniform")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_the_dtype_is_kept(dtype):
    layer = Embedding(4, 3, dtype=dtype)
    y = layer(np.array([[1, 2]]))
    layer.backward(np.ones(y.shape))  # a float64 gradient too
    assert y.dtype == layer.weight.grad.dtype == dtype


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "error", "message"),
    [
        (
            np.array([1.0, 2.0]),
            TypeError,
            r"Embedding\(10, 3\) input must hold integer indices, got dtype float64; if it "
            r"holds whole numbers, convert it with x\.astype\(np\.int64\)",
        ),
        (np.array([True, False]), TypeError, "must hold integer indices, got dtype bool$"),
        (np.array(["1", "2"]), TypeError, "must hold integer indices, got dtype <U1; convert it"),
        (np.array([1 + 0j]), TypeError, "must hold integer indices, got dtype complex128"),
        ([[1, 2], [3]], TypeError, "Embedding input must be a numeric array, got list"),
        (
            np.array([[3, 4], [10, 0]]),
            IndexError,
            r"Embedding\(10, 3\) input holds index 10 at position \(1, 0\); indices must be in "
            r"\[0, 10\)$",
        ),
        (
            np.array([3, -1]),
            IndexError,
            r"holds index -1 at position \(1,\); .*\(negative indices do not count from the end\)",
        ),
        (np.array([2**63], np.uint64), IndexError, "holds index 9223372036854775808 at position"),
        (np.int64(12), IndexError, r"holds index 12 at position \(\); indices must be in"),
    ],
)
def test_inputs_that_are_not_indices_in_range_are_refused(x, error, message):
    layer = Embedding(10, 3)
    with pytest.raises(error, match=message):
        layer(x)
    with pytest.raises(RuntimeError, match="after a forward pass that failed"):
        layer.backward(np.ones((2, 3), np.float32))


def test_lists_and_any_index_shape_are_taken():
    layer = Embedding(5, 2)
    assert layer([[0, 1, 2], [3, 4, 4]]).shape == (2, 3, 2)
    assert layer(np.int64(3)).shape == (2,)
    assert layer(np.zeros((0, 4), np.int64)).shape == (0, 4, 2)
    layer.backward(np.zeros((0, 4, 2), np.float32))
    assert not layer.weight.grad.any()


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_embeddings": "10"}, TypeError, "Embedding num_embeddings must be a positive int"),
        ({"num_embeddings": 0}, ValueError, "num_embeddings must be a positive integer, got 0"),
        ({"embedding_dim": 2.0}, TypeError, "embedding_dim must be a positive integer, got 2.0"),
        ({"embedding_dim": True}, TypeError, "embedding_dim must be a positive integer, got True"),
        ({"dtype": np.int64}, TypeError, "Embedding dtype must be a floating-point type"),
        ({"rng": "0"}, TypeError, "Embedding rng must be None, an integer seed >= 0"),
        ({"num_embeddings": 2**40, "embedding_dim": 2**30}, MemoryError, "its weight would"),
    ],
)
def test_constructor_arguments_are_checked(kwargs, error, message):
    with pytest.raises(error, match=message):
        Embedding(**{"num_embeddings": 10, "embedding_dim": 3, **kwargs})


def test_backward_checks_when_and_what_it_is_given():
    layer = Embedding(10, 3)
    with pytest.raises(RuntimeError, match=r"Embedding.backward\(\) was called before forward"):
        layer.backward(np.ones((2, 3), np.float32))
    layer(np.array([1, 2]))
    with pytest.raises(ShapeError, match=r"expected grad_output of shape \(2, 3\).*got \(3, 2\)"):
        layer.backward(np.ones((3, 2), np.float32))
    with pytest.raises(TypeError, match="floating-point gradient, got dtype int64"):
        layer.backward(np.ones((2, 3), np.int64))
    layer.eval()(np.array([1]))
    layer.train()
    with pytest.raises(RuntimeError, match=r"Embedding.backward\(\): the last forward pass ran"):
        layer.backward(np.ones((1, 3), np.float32))


# -- files and training ------------------------------------------------------------------------


def test_save_and_load_round_trip_with_a_table_from_config_left_unwritten(tmp_path):
    model = mg.Sequential(Embedding(7, 3, rng=0), mg.Dense(3, 2, rng=1))
    mg.save(model, tmp_path / "m.safetensors")
    loaded = mg.load(tmp_path / "m.safetensors")
    assert repr(loaded) == repr(model)
    np.testing.assert_array_equal(loaded[0].weight.value, model[0].weight.value)
    assert model[0].get_config() == {"num_embeddings": 7, "embedding_dim": 3, "dtype": "float32"}
    assert not Embedding.from_config(model[0].get_config()).weight.value.any()  # zeros
    with pytest.raises(
        ValueError,
        match=r"an Embedding config has the keys \['dtype', 'embedding_dim', 'num_embeddings'\]",
    ):
        Embedding.from_config({"num_embeddings": 7})


def test_fit_trains_an_embedding_of_category_codes():
    """Each code's class is a function of the code: the table learns it. GradientBounds has
    no bounds for it, so SafeStep measures the gradients."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 12, 240)
    y = (x * 7) % 3
    model = mg.Sequential(Embedding(12, 4, rng=0), mg.Tanh(), mg.Dense(4, 3, rng=1))
    optimizer = mg.Adam(model.parameters(), lr=0.05)
    history = mg.fit(model, mg.CrossEntropy(), optimizer, x, y, epochs=30, progress=False, seed=0)
    assert history["accuracy"][-1] == 1.0
    np.testing.assert_array_equal(
        mg.predict(model, np.arange(12)).argmax(1), (np.arange(12) * 7) % 3
    )


def test_scatter_add_leaves_rows_that_were_not_indexed_at_zero():
    grad = np.full((6, 2), 9.0)
    embedding._scatter_add(grad, np.array([4, 1, 4]), np.ones((3, 2)))
    np.testing.assert_array_equal(grad[:, 0], [0, 1, 0, 0, 2, 0])
