"""Local tools: `fnhost build` (a guest into a bundle zip) and `fnhost new` (a function from a template)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click

from ._common import CliError, command, progress, say


def build_bundle(
    src: Path, *, sign: str | None = None, name: str | None = None, cache_dir: Path | None = None
) -> tuple[str, bytes]:
    """Build the guest in `src` and pack it (signed with the key file `sign`): (name, zip bytes)."""
    from ..build import build_guest
    from ..control import bundle_digest, pack_bundle, sign_bundle

    with progress(f"building {src}"):
        built = build_guest(src, cache_dir=cache_dir, progress=lambda m: say(f"  {m}"))
    manifest_text = (src / "fnhost.toml").read_text(encoding="utf-8")
    if name is not None and name != built.manifest.name:
        manifest_text = _renamed(manifest_text, built.manifest.name, name)
    wasm = built.wasm_path.read_bytes()
    signature = None
    if sign is not None:
        key_pem = Path(sign).read_bytes() if Path(sign).is_file() else None
        if key_pem is None:
            raise CliError(f"--sign {sign}: no such key file; make one with `fnhost keys gen-signing -o {sign}`")
        signature = sign_bundle(bundle_digest(manifest_text, wasm), key_pem)
    return name or built.manifest.name, pack_bundle(manifest_text, wasm, signature=signature)


def _renamed(manifest_text: str, old: str, new: str) -> str:
    """The manifest with its top-level `name` changed (deploying one source under several names)."""
    from ..manifest import Manifest

    text, count = re.subn(
        r'(?m)^(\s*name\s*=\s*)(["\'])' + re.escape(old) + r"\2",
        rf"\g<1>\g<2>{new}\g<2>",
        manifest_text,
        count=1,
    )
    if count != 1 or Manifest.from_toml(text).name != new:
        raise CliError(f"--name: could not rename {old!r} in fnhost.toml; edit its `name` instead")
    return text


def default_bundle_path(src: Path, name: str, cache_dir: Path | None) -> Path:
    """NAME.zip in the working directory, unless that is inside the guest's source: a bundle there
    would change the source hash, so the next build would not be a cache hit. Then the cache's bundles/."""
    from ..build import default_cache_dir

    here = Path.cwd().resolve()
    if here == src.resolve() or src.resolve() in here.parents:
        return (cache_dir or default_cache_dir()) / "bundles" / f"{name}.zip"
    return Path(f"{name}.zip")


@command(name="build", example="fnhost build guests/rust/hello -o hello.zip --sign release.key")
@click.argument("dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    help="bundle path (default NAME.zip, or the cache's bundles/ when run inside DIR); *.wasm: the bare binary",
)
@click.option(
    "--cache-dir", type=click.Path(path_type=Path), help="build cache (default $FNHOST_CACHE_DIR or ~/.cache/fnhost)"
)
@click.option("--sign", metavar="KEYFILE", help="sign with this Ed25519 private key")
def build(dir: Path, output: Path | None, cache_dir: Path | None, sign: str | None) -> int:
    """Build a guest's source directory into a bundle zip."""
    if output is not None and output.suffix == ".wasm":  # just the binary, e.g. for Host.deploy or tests
        if sign:
            raise CliError("--sign signs bundles; write a .zip (-o NAME.zip) to sign")
        from ..build import build_guest

        with progress(f"building {dir}"):
            built = build_guest(dir, cache_dir=cache_dir, progress=lambda m: say(f"  {m}"))
        shutil.copyfile(built.wasm_path, output)
        print(f"wrote {output} ({output.stat().st_size} bytes)")
        return 0
    name, data = build_bundle(dir, sign=sign, cache_dir=cache_dir)
    out = output or default_bundle_path(dir, name, cache_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    print(f"wrote {out} ({len(data)} bytes{', signed' if sign else ''})")
    return 0


@command(name="new", example="fnhost new rust hello && cd hello && fnhost build .")
@click.argument("language", type=click.Choice(["python", "js", "rust", "go", "c"]))
@click.argument("dir", type=click.Path(path_type=Path))
@click.option("--name", help="the function's name (default: DIR's name)")
def new(language: str, dir: Path, name: str | None) -> int:
    """Write a new function (HTTP route, event handler, kv, a test) into DIR."""
    from ..build.templates import new_function

    files = new_function(language, dir, name=name)
    print(f"wrote {len(files)} files to {dir}: {', '.join(str(f.relative_to(dir)) for f in files)}")
    print(f"next: cd {dir} && fnhost build . && python -m pytest test_function.py && fnhost deploy .")
    return 0


COMMANDS = [build, new]
