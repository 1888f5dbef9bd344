"""pytest fixtures for the container images that `make images` builds.

- `server_image` (session): "localhost/forecast-server:dev" once it is built.
- `operator_image` (session): "localhost/forecast-operator:dev" once it is built.

A missing podman or image skips the test locally and fails it with CI=true
(devenv.require.unavailable). Run the images with devenv.images.podman().
"""

from __future__ import annotations

import shutil

import pytest

from devenv import images
from devenv.require import unavailable


def _built(ref: str) -> str:
    if shutil.which("podman") is None:
        unavailable(f"the image {ref}", "podman is not installed (run `make images`)")
    if not images.image_exists(ref):
        unavailable(f"the image {ref}", "it is not built (run `make images`)")
    return ref


@pytest.fixture(scope="session")
def server_image() -> str:
    return _built(images.SERVER_IMAGE)


@pytest.fixture(scope="session")
def operator_image() -> str:
    return _built(images.OPERATOR_IMAGE)
