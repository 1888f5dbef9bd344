"""Running the built images as a restricted pod runs them, with podman on this machine.

Every container here runs read-only as uid 10001 with every capability dropped, no new
privileges, and only /tmp writable (a tmpfs, as the pod's emptyDir) - the security
context the operator writes for its pods. Containers are named, and removed by name at the
end of the test that started them.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from images_support import RESTRICTED, Container

from devenv.images import podman
from model_training.train import TrainResult, train_sample


@pytest.fixture
def restricted() -> Iterator[Callable[..., Container]]:
    """`start(image, *podman_options, args=[...])`: a detached restricted container."""
    started: list[Container] = []

    def start(image: str, *options: str, args: tuple[str, ...] | list[str] = ()) -> Container:
        container = Container(f"forecastops-test-{uuid.uuid4().hex[:10]}")
        started.append(container)
        podman("run", "--detach", "--name", container.name, *RESTRICTED, *options, image, *args)
        return container

    yield start
    for container in started:
        container.remove()


@pytest.fixture(scope="session")
def image_model(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    """A small real forecaster (as the model server's tests train it)."""
    out = tmp_path_factory.mktemp("image-model")
    return train_sample(out, stores=2, items=3, days=120, trees=10, max_depth=3, progress=False)


@pytest.fixture
def models_dir(image_model: TrainResult, tmp_path: Path) -> Path:
    """The model in a directory that uid 10001 can read (mounted read-only at /models)."""
    directory = tmp_path / "models"
    directory.mkdir()
    shutil.copy(image_model.model_path, directory / "model.onnx")
    directory.chmod(0o755)
    (directory / "model.onnx").chmod(0o644)
    return directory
