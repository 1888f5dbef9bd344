"""Repository-wide pytest plugins: the real control plane and the real services."""

pytest_plugins = [
    "devenv.pytest_cluster",
    "devenv.pytest_services",
    "devenv.pytest_models",
    "devenv.pytest_images",
]
