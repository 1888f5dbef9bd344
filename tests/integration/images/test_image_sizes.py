"""The images' sizes on the real python:3.11-slim-bookworm (docs/images.md: how measured).

Built on the local stand-in base, a size is the image minus the stand-in plus the real slim
base's size (devenv.images.REAL_SLIM_BASE_BYTES, an estimate erring on the large side).
"""

from __future__ import annotations

from devenv.images import size_of

MB = 1_000_000
SERVER_TARGET = 450 * MB
OPERATOR_TARGET = 450 * MB


def test_the_server_image_is_at_most_450_mb(server_image: str) -> None:
    size = size_of(server_image)
    assert size.on_real_base <= SERVER_TARGET, size.line()


def test_the_operator_image_is_at_most_450_mb(operator_image: str) -> None:
    size = size_of(operator_image)
    assert size.on_real_base <= OPERATOR_TARGET, size.line()
