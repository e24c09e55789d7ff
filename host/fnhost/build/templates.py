"""`fnhost new LANG DIR`: a new function from the templates in ``sdk/templates``.

Every template is the same small function in its language: ``GET /hello?name=...`` greets and
counts visits in the kv bucket ``visits``, any event returns the count. Each comes with a commented
``fnhost.toml`` and ``test_function.py``, a pytest file that builds, deploys and calls it. The files
are ``sdk/templates/common`` plus ``sdk/templates/<LANG>``, with ``{{name}}``, ``{{crate}}``,
``{{language}}`` and ``{{sdk}}`` filled in.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import BuildError
from ..manifest import Manifest
from . import LANGUAGES, sdk_root

PLACEHOLDER = re.compile(r"\{\{(name|crate|language|sdk)\}\}")


def new_function(language: str, directory: Path, *, name: str | None = None) -> list[Path]:
    """Write a new `language` function into `directory` (new or empty); returns the files written.

    The name defaults to the directory's name. Raises `BuildError` for an unknown language, a bad
    name or a directory that has files in it.
    """
    if language not in LANGUAGES:
        raise BuildError(f"unknown language {language!r}: fnhost new takes one of {', '.join(LANGUAGES)}")
    directory = Path(directory)
    name = name or directory.resolve().name
    Manifest.from_toml(f'name = "{name}"\n'.encode())  # the manifest's own name check, or ManifestError
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BuildError(f"{directory} is not an empty directory: fnhost new writes a function only into a new one")
    values = {"name": name, "crate": name.replace("-", "_"), "language": language, "sdk": str(sdk_root())}
    written = []
    for root in (sdk_root() / "templates" / "common", sdk_root() / "templates" / language):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            target = directory / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(PLACEHOLDER.sub(lambda m: values[m.group(1)], path.read_text(encoding="utf-8")))
            written.append(target)
    return written


__all__ = ["new_function"]
