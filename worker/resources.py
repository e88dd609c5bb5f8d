"""Files the package ships: the default file rules, the sample worker configuration and
the engines' index template.

They live in the top-level config/ directory, which the team edits. worker/shipped holds a
symlink to each, so they are package data of `worker` (setup.cfg's package_data copies the
files into the wheel). One lookup, relative to the imported package, then finds them in a
checkout, an editable install and a regular install alike, and always the copy that
belongs to the code running.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from worker.errors import ConfigError


def resource_path(name: str) -> Path:
    """The shipped file `name` (e.g. "rules.yaml"), as a path on disk."""
    # pip installs packages as plain directories, so the resources are ordinary files.
    directory = Path(str(files("worker").joinpath("shipped")))
    # Resolved, so that in a checkout messages name the file in config/ one would edit.
    path = (directory / name).resolve()
    if not path.is_file():
        raise ConfigError(f"{name}: not found in {directory}")
    return path
