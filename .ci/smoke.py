"""Smoke test of an installed minigrad release: run by .ci/release in a fresh virtual
environment that holds the artifact and NumPy only, from a folder outside the source tree."""

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import numpy as np

import minigrad as mg

package = Path(mg.__file__).parent
assert "site-packages" in package.parts, f"minigrad imported from {package}, not the install"
version = importlib.metadata.version("minigrad-nn")
assert mg.__version__ == version, f"minigrad.__version__ {mg.__version__} != metadata {version}"
assert (package / "py.typed").is_file(), "the py.typed marker is missing"

# The README's first model: XOR with fit.
x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
y = np.array([[0], [1], [1], [0]], dtype=np.float32)
model = mg.Sequential(mg.Dense(2, 8, rng=0), mg.Tanh(), mg.Dense(8, 1, rng=1))
history = mg.fit(
    model,
    mg.BinaryCrossEntropy(from_logits=True),
    mg.Adam(model.parameters(), lr=0.05),
    x,
    y,
    epochs=300,
    batch_size=4,
    progress=False,
    seed=0,
)
assert history["accuracy"][-1] == 1.0, history["accuracy"][-1]
assert model(x).dtype == np.float32

# Optional parts say which extra they need.
try:
    mg.save(model, "model.safetensors")
except ImportError as error:
    assert "minigrad-nn[files]" in str(error), error
else:
    raise AssertionError("save worked without the safetensors package")

# The command line, by module and by console script.
for command in (
    [sys.executable, "-m", "minigrad"],
    [str(Path(sys.executable).parent / "minigrad")],
):
    done = subprocess.run(
        [*command, "--epochs", "5", "--quiet"], capture_output=True, text=True, check=True
    )
    assert "test accuracy" in done.stdout, done.stdout
print(f"smoke: minigrad-nn {version} from {package.parent.name}: fit, dtype, extras hint, CLI ok")
