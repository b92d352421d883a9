"""The committed viewer bundle (tiler/static/viewer) is built from the current frontend sources.

`npm run build` writes a hash of the sources into the bundle's source-hash.txt
(frontend/source-hash.mjs); this test recomputes it from frontend/ and fails when they differ,
that is when a source changed without rebuilding. A fast unit test: no Node needed.

The rule (keep it identical in frontend/source-hash.mjs):
  files   ROOT_FILES that exist, and every file under src/ (recursively) with no path segment
          starting with "." (editor and OS droppings such as .DS_Store);
  paths   relative to frontend/, "/"-separated, sorted by their UTF-8 bytes;
  content the file's bytes with every CRLF replaced by LF (so a Windows checkout hashes alike);
  hash    sha256 hex of the concatenation, over the sorted files, of
          "<path>\\0<sha256 hex of content>\\n" (UTF-8).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FRONTEND = REPO / "frontend"
HASH_FILE = REPO / "tiler" / "static" / "viewer" / "source-hash.txt"
ROOT_FILES = (
    "index.html",
    "package-lock.json",
    "package.json",
    "source-hash.mjs",
    "tsconfig.json",
    "vite.config.ts",
)
SOURCE_DIR = "src"
STALE = "the viewer bundle is stale: cd frontend && npm ci && npm run build"


def is_source_file(path: str) -> bool:
    """Whether a path (relative to frontend/, "/"-separated) is part of the hash, if it exists."""
    if path in ROOT_FILES:
        return True
    parts = path.split("/")
    return len(parts) > 1 and parts[0] == SOURCE_DIR and not any(p.startswith(".") for p in parts)


def _list_files(root: Path, folder: str) -> list[str]:
    found = []
    for entry in (root / folder).iterdir():
        path = f"{folder}/{entry.name}"
        if entry.is_dir():
            found += _list_files(root, path)
        elif entry.is_file():
            found.append(path)
    return found


def source_files(root: Path = FRONTEND) -> list[str]:
    roots = [path for path in ROOT_FILES if (root / path).is_file()]
    files = [path for path in roots + _list_files(root, SOURCE_DIR) if is_source_file(path)]
    return sorted(files, key=lambda path: path.encode())


def hash_files(files: Iterable[tuple[str, bytes]]) -> str:
    manifest = []
    for path, content in sorted(files, key=lambda file: file[0].encode()):
        digest = hashlib.sha256(content.replace(b"\r\n", b"\n")).hexdigest()
        manifest.append(f"{path}\0{digest}\n")
    return hashlib.sha256("".join(manifest).encode()).hexdigest()


def source_hash(root: Path = FRONTEND) -> str:
    return hash_files((path, (root / path).read_bytes()) for path in source_files(root))


# The same cases as frontend/test/source-hash.test.ts: both implementations must agree on them.
GOLDEN_FILES = [
    ("src/b.ts", b"export const b = 1;\r\n"),
    ("index.html", b"<!doctype html>\n"),
    ("src/a/\u00e9.css", b"body{}\r"),
    ("src/A.ts", b""),
]
GOLDEN_HASH = "5da50b69b8c8b1c1d7e097af87075387b82c659381bbaae576614a252dca2cdc"
GOLDEN_PATHS = {
    "index.html": True,
    "vite.config.ts": True,
    "source-hash.mjs": True,
    "README.md": False,
    "test/store.test.ts": False,
    "src": False,
    "src/main.ts": True,
    "src/deep/er/x.css": True,
    "src/.DS_Store": False,
    "src/.cache/x.ts": False,
    "node_modules/x/index.js": False,
}


def test_the_hashing_rule_matches_the_frontend_build():
    assert hash_files(GOLDEN_FILES) == GOLDEN_HASH
    lf = [(path, content.replace(b"\r\n", b"\n")) for path, content in GOLDEN_FILES]
    crlf = [(path, content.replace(b"\n", b"\r\n")) for path, content in lf]
    assert hash_files(lf) == GOLDEN_HASH
    assert hash_files(crlf) == GOLDEN_HASH
    assert hash_files([*GOLDEN_FILES, ("src/c.ts", b"")]) != GOLDEN_HASH
    assert {path: is_source_file(path) for path in GOLDEN_PATHS} == GOLDEN_PATHS


def test_the_viewer_bundle_is_built_from_the_current_sources():
    if not (FRONTEND / SOURCE_DIR).is_dir():
        pytest.skip("no frontend sources in this checkout")
    assert "src/main.ts" in source_files()
    assert HASH_FILE.is_file(), f"{STALE} ({HASH_FILE.relative_to(REPO)} is missing)"
    built = HASH_FILE.read_text().strip()
    current = source_hash()
    assert built == current, f"{STALE} (built from sources {built[:12]}, now {current[:12]})"
