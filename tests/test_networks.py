"""Whole networks built from every layer family: they train, save, load, resume bit for bit,
export to ONNX, and cross to PyTorch and back through their safetensors files."""

from __future__ import annotations

import numpy as np
import pytest

import minigrad as mg


def image_network(seed: int = 0, dropout_seed: int = 5) -> mg.Sequential:
    """Every image layer and both containers: (N, 1, 8, 8) -> (N, 10)."""
    return mg.Sequential(
        mg.Conv2d(1, 4, 3, padding=1, rng=seed),
        mg.BatchNorm2d(4),
        mg.ReLU(),
        mg.MaxPool2d(2),
        mg.Residual(
            mg.Sequential(
                mg.Conv2d(4, 4, 3, padding="same", rng=seed + 1), mg.BatchNorm2d(4), mg.GELU()
            )
        ),
        mg.Concat(
            mg.Conv2d(4, 2, 1, rng=seed + 2),
            mg.Sequential(mg.AvgPool2d(3, stride=1, padding=1), mg.Conv2d(4, 2, 1, rng=seed + 3)),
            dim=1,
        ),
        mg.SiLU(),
        mg.Conv2d(4, 8, 3, stride=2, padding=1, groups=2, rng=seed + 4),
        mg.ELU(),
        mg.AdaptiveAvgPool2d(1),
        mg.Flatten(),
        mg.Dropout(0.25, rng=dropout_seed),
        mg.Dense(8, 16, rng=seed + 5),
        mg.LayerNorm(16),
        mg.Softplus(),
        mg.Dense(16, 10, rng=seed + 6),
    )


def sequence_network(seed: int = 0) -> mg.Sequential:
    """The 1-d layers and Embedding: (N, 3, 12) -> (N, 4) and (N, 5) int -> (N, 4)."""
    return mg.Sequential(
        mg.Conv1d(3, 6, 3, padding="same", dilation=2, rng=seed),
        mg.BatchNorm1d(6),
        mg.ReLU(),
        mg.MaxPool1d(2),
        mg.AvgPool1d(3, stride=1, padding=1),
        mg.AdaptiveAvgPool1d(2),
        mg.Flatten(),
        mg.Dense(12, 4, rng=seed + 1),
    )


def token_network(seed: int = 0) -> mg.Sequential:
    return mg.Sequential(
        mg.Embedding(20, 6, rng=seed),
        mg.Flatten(),
        mg.BatchNorm1d(30),
        mg.Tanh(),
        mg.Dense(30, 4, rng=seed + 1),
        mg.LogSoftmax(),
    )


def digits_images(count: int = 240) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, size=count)
    # each class a fixed random 8x8 pattern plus noise: learnable in a few epochs
    patterns = rng.normal(size=(10, 1, 8, 8))
    x = patterns[y] + 0.5 * rng.normal(size=(count, 1, 8, 8))
    return x.astype(np.float32), y


def fit(model, x, y, *, epochs, **kwargs):
    optimizer = mg.Adam(model.parameters(), lr=0.01)
    history = mg.fit(
        model, mg.CrossEntropy(), optimizer, x, y, epochs=epochs, batch_size=32, seed=1,
        progress=False, **kwargs,
    )  # fmt: skip
    return history


def test_the_image_network_trains(tmp_path):
    x, y = digits_images()
    model = image_network()
    history = fit(model, x, y, epochs=8)
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert mg.evaluate(model, mg.CrossEntropy(), x, y)["accuracy"] > 0.9


@pytest.mark.parametrize(
    ("make", "data"),
    [
        (image_network, digits_images),
        (
            sequence_network,
            lambda: (
                np.random.default_rng(1).normal(size=(96, 3, 12)).astype(np.float32),
                np.random.default_rng(2).integers(0, 4, size=96),
            ),
        ),
        (
            token_network,
            lambda: (
                np.random.default_rng(1).integers(0, 20, size=(96, 5)),
                np.random.default_rng(2).integers(0, 4, size=96),
            ),
        ),
    ],
    ids=["images", "sequences", "tokens"],
)
def test_a_resumed_run_is_the_uninterrupted_run_bit_for_bit(tmp_path, make, data):
    pytest.importorskip("safetensors")
    x, y = data()
    model = make()
    whole = fit(
        model, x, y, epochs=4, callbacks=[mg.ModelCheckpoint(tmp_path / "e{epoch}.safetensors")]
    )
    # other initial weights and another dropout seed: only the checkpoint makes them agree
    resumed = make(seed=40) if make is not image_network else image_network(40, 99)
    history = fit(resumed, x, y, epochs=4, resume_from=tmp_path / "e2.safetensors")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(resumed.state_dict()[key], value, err_msg=key)
    assert history["loss"] == whole["loss"]


def test_a_trained_network_saves_and_loads_with_its_buffers_and_computes_the_same(tmp_path):
    pytest.importorskip("safetensors")
    x, y = digits_images()
    model = image_network()
    fit(model, x, y, epochs=2)
    path = tmp_path / "net.safetensors"
    mg.save(model, path)
    loaded = mg.load(path)
    assert repr(loaded) == repr(model)
    assert set(dict(loaded.named_buffers())) == set(dict(model.named_buffers())) != set()
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(loaded.state_dict()[key], value, err_msg=key)
    np.testing.assert_array_equal(mg.predict(loaded, x), mg.predict(model, x))


def test_the_trained_network_exports_to_onnx_and_runs_as_in_eval_mode(tmp_path):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    x, y = digits_images()
    model = image_network()
    fit(model, x, y, epochs=2)
    path = tmp_path / "net.onnx"
    mg.export_onnx(model, path, input_shape=(1, 8, 8))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": x[:50]})
    np.testing.assert_allclose(output, mg.predict(model, x[:50]), rtol=1e-4, atol=1e-5)


def torch_image_network(torch):
    """image_network as torch modules, minus the containers torch lacks (Residual and Concat
    are rebuilt as small modules with the same state_dict keys)."""
    nn = torch.nn

    class Residual(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, x):
            return self.block(x) + x

    class Concat(nn.Module):
        def __init__(self, *branches):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, x):
            return torch.cat([branch(x) for branch in self.branches], dim=1)

    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding="same"), nn.BatchNorm2d(4), nn.GELU())),
        Concat(
            nn.Conv2d(4, 2, 1),
            nn.Sequential(nn.AvgPool2d(3, stride=1, padding=1), nn.Conv2d(4, 2, 1)),
        ),
        nn.SiLU(),
        nn.Conv2d(4, 8, 3, stride=2, padding=1, groups=2),
        nn.ELU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.25),
        nn.Linear(8, 16),
        nn.LayerNorm(16),
        nn.Softplus(),
        nn.Linear(16, 10),
    )


def test_the_safetensors_file_loads_into_torch_and_back(tmp_path, torch):
    safetensors_torch = pytest.importorskip("safetensors.torch")
    x, y = digits_images()
    model = image_network()
    fit(model, x, y, epochs=2)
    path = tmp_path / "net.safetensors"
    mg.save(model, path)
    twin = torch_image_network(torch).float()  # the fixture makes float64 the default
    twin.load_state_dict(safetensors_torch.load_file(str(path)))  # strict: every key matches
    with torch.no_grad():
        expected = twin.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(mg.predict(model, x), expected, rtol=1e-4, atol=1e-5)

    # and back: torch trains one step in train mode, its state_dict loads into minigrad
    twin.train()
    optimizer = torch.optim.SGD(twin.parameters(), lr=0.1)
    torch.nn.functional.cross_entropy(
        twin(torch.from_numpy(x[:32])), torch.from_numpy(y[:32])
    ).backward()
    optimizer.step()
    back = tmp_path / "back.safetensors"
    safetensors_torch.save_file(
        {k: v.contiguous() for k, v in twin.state_dict().items()}, str(back)
    )
    model.load_state_dict(mg.load_tensors(back))
    with torch.no_grad():
        expected = twin.eval()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(mg.predict(model, x), expected, rtol=1e-4, atol=1e-5)
