"""Listing a build's log tree: locally, from HTTP index pages, and from zuul-manifest.json.

The remote tests use a real HTTP server (the stdlib's, whose directory pages are real
autoindex HTML) serving a tree built from corpus files.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import urllib3

from log_shipper.listing import list_local, list_remote, list_tree
from log_shipper.rules import default_rules
from tests.paths import CORPUS
from worker.errors import FetchError

# relative path in the test tree -> corpus file
TREE = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "job-output.txt.gz": "zuul-jobs-fixture/job-output.txt.gz",
    "logs/screen-q-svc.txt.gz": "os-loganalyze/screen-q-svc.txt.gz",
    "logs/syslog.txt": "os-loganalyze/syslog.txt",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
    "logs/with space/devstack@c-vol.service.log.txt": (
        "os-loganalyze/devstack@c-vol.service.log.txt"
    ),
    "logs/apache/deep/er/testrepository.subunit": "ci-log-processing/testrepository.subunit",
}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "build"
    for relative, source in TREE.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / source, target)
    (root / "logs" / "empty").mkdir()
    return root


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean

    def do_GET(self) -> None:
        # A few paths that behave like misbehaving or moved log servers.
        if self.path.startswith("/moved/"):
            self.send_response(301)
            self.send_header("Location", "/" + self.path.removeprefix("/moved/"))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/broken/"):
            self.send_error(500, "boom")
            return
        if self.path == "/text/":
            body = b"a log file where an index page was expected\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture
def serve() -> Iterator[Callable[[Path], str]]:
    """Serve a directory over HTTP on 127.0.0.1; returns the base URL (ending in /)."""
    servers: list[ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(directory)))
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def sizes(tree: Path) -> dict[str, int]:
    return {
        path.relative_to(tree).as_posix(): path.stat().st_size
        for path in tree.rglob("*")
        if path.is_file()
    }


# --- local -------------------------------------------------------------------------


def test_list_local(tree: Path):
    entries = list_local(tree)
    assert {e.path: e.size for e in entries} == sizes(tree)
    assert [e.path for e in entries] == sorted(TREE)
    for entry in entries:
        assert Path(entry.url).is_absolute()
        assert Path(entry.url).read_bytes() == (CORPUS / TREE[entry.path]).read_bytes()


def test_list_local_symlinks(tree: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not part of the build\n")
    logs = tree / "logs"
    (logs / "leak.txt").symlink_to(outside / "secret.txt")
    (logs / "leakdir").symlink_to(outside, target_is_directory=True)
    (logs / "alias.txt").symlink_to(logs / "syslog.txt")
    (logs / "loop").symlink_to(tree, target_is_directory=True)
    (logs / "dangling.txt").symlink_to(tree / "nope")
    paths = [e.path for e in list_local(tree)]
    assert "logs/alias.txt" in paths
    assert not any("leak" in p or "dangling" in p for p in paths)
    # The loop back to the root is not walked again.
    assert not any(p.startswith("logs/loop/") for p in paths)
    assert len(paths) == len(TREE) + 1


def test_list_local_errors(tmp_path: Path):
    with pytest.raises(FetchError, match="cannot list"):
        list_local(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(FetchError, match="not a directory"):
        list_local(tmp_path / "file.txt")


def test_list_tree_dispatch(tree: Path, serve):
    local = list_local(tree)
    assert list_tree(str(tree)) == local
    assert list_tree(tree.as_uri()) == local
    remote = list_tree(serve(tree))
    assert [e.path for e in remote] == [e.path for e in local]


# --- HTTP index pages ---------------------------------------------------------------


def test_list_remote_from_index_pages(tree: Path, serve):
    base = serve(tree)
    remote = list_remote(base)
    local = list_local(tree)
    assert [e.path for e in remote] == [e.path for e in local]
    # Index pages carry no exact sizes.
    assert all(e.size is None for e in remote)
    http = urllib3.PoolManager()
    for entry in remote:
        assert entry.url.startswith(base)
        response = http.request("GET", entry.url)
        assert response.status == 200, entry.url
        assert response.data == (tree / entry.path).read_bytes()


def test_list_remote_root_without_slash_and_redirect(tree: Path, serve):
    base = serve(tree)
    expected = [e.path for e in list_remote(base)]
    assert [e.path for e in list_remote(base + "logs")] == [
        p.removeprefix("logs/") for p in expected if p.startswith("logs/")
    ]
    moved = list_remote(base + "moved/")
    assert [e.path for e in moved] == expected
    # The URLs are where the files really are, not under the redirecting prefix.
    assert all(e.url.startswith(base) and "/moved/" not in e.url for e in moved)


def test_index_links_outside_the_directory_are_ignored(tmp_path: Path, serve):
    # An Apache autoindex page: sort links, parent link, absolute and foreign links.
    site = tmp_path / "site"
    (site / "sub").mkdir(parents=True)
    (site / "index.html").write_text(
        """<html><head><title>Index of /build</title></head><body>
<h1>Index of /build</h1><pre><img src="/icons/blank.gif" alt="Icon ">
<a href="?C=N;O=D">Name</a> <a href="?C=M;O=A">Last modified</a> <a href="?C=S;O=A">Size</a>
<hr><img src="/icons/back.gif" alt="[PARENTDIR]"> <a href="/">Parent Directory</a>
<a href="../">..</a> <a href="/elsewhere/x.txt">x</a>
<a href="http://other.example/build/a.txt">mirror</a>
<a href="a.txt"><img src="/icons/text.gif" alt="[TXT]"></a> <a href="a.txt">a.txt</a> 1.2K
<a href="sub/">sub/</a>  <a href="sub/?C=N;O=D">sorted</a> <a href="a.txt#top">again</a>
<a href="job%20output.txt">job output.txt</a> <a href="mailto:infra@example.org">mail</a>
</pre></body></html>"""
    )
    (site / "sub" / "index.html").write_text(
        '<a href="../">Parent</a><a href="b.txt.gz">b.txt.gz</a><a href="/sub/c.txt">c</a>'
    )
    base = serve(site)
    entries = list_remote(base)
    assert [e.path for e in entries] == ["a.txt", "job output.txt", "sub/b.txt.gz", "sub/c.txt"]
    assert entries[1].url == base + "job%20output.txt"


def test_list_remote_max_depth_and_max_files(tree: Path, serve):
    base = serve(tree)
    for depth in (0, 1, 2):
        listed = [e.path for e in list_remote(base, max_depth=depth)]
        assert listed == [p for p in sorted(TREE) if p.count("/") <= depth]
    with pytest.raises(FetchError, match="more than 3 files"):
        list_remote(base, max_files=3)


def test_list_remote_http_errors(tree: Path, serve):
    base = serve(tree)
    with pytest.raises(FetchError) as info:
        list_remote(base + "no/such/dir/")
    assert str(info.value) == f"GET {base}no/such/dir/: HTTP 404"
    with pytest.raises(FetchError, match=r"broken/zuul-manifest\.json: HTTP 500"):
        list_remote(base + "broken/", retries=0)
    with pytest.raises(FetchError, match=r"text/: not a directory index \(text/plain"):
        list_remote(base + "text/")


def test_list_remote_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/logs/"
    with pytest.raises(FetchError) as info:
        list_remote(url, retries=0, connect_timeout=2)
    message = str(info.value)
    assert message.startswith(f"GET {url}zuul-manifest.json: ")
    assert "\n" not in message and "object at 0x" not in message


# --- zuul-manifest.json -------------------------------------------------------------


def manifest_node(path: Path) -> dict[str, Any]:
    if path.is_dir():
        return {
            "name": path.name,
            "mimetype": "application/directory",
            "children": [manifest_node(p) for p in sorted(path.iterdir())],
        }
    node: dict[str, Any] = {
        "name": path.name,
        "mimetype": "text/plain",
        "size": path.stat().st_size,
    }
    if path.name.endswith(".gz"):
        node["encoding"] = "gzip"
    return node


def test_list_remote_uses_the_manifest(tree: Path, serve):
    nodes = [manifest_node(p) for p in sorted(tree.iterdir())]
    logs = next(n for n in nodes if n["name"] == "logs")
    # To show the manifest, not the index pages, was read: one file on disk is left out
    # of it, one file exists only in it, and sizes come from it.
    logs["children"] = [c for c in logs["children"] if c["name"] != "syslog.txt"]
    logs["children"].append({"name": "only-in-manifest.txt", "mimetype": "text/plain", "size": 7})
    # A directory by mimetype alone, and names that would escape the tree.
    logs["children"].append({"name": "nodir", "mimetype": "application/directory"})
    logs["children"].append({"name": "..", "mimetype": "text/plain", "size": 1})
    logs["children"].append({"name": "a/../../b", "mimetype": "text/plain", "size": 1})
    (tree / "zuul-manifest.json").write_text(json.dumps({"tree": nodes, "index_links": False}))

    base = serve(tree)
    entries = list_remote(base)
    expected = dict(sizes(tree))
    del expected["logs/syslog.txt"]
    del expected["zuul-manifest.json"]  # not listed in itself
    expected["logs/only-in-manifest.txt"] = 7
    assert {e.path: e.size for e in entries} == expected
    assert [e.path for e in entries] == sorted(expected)
    http = urllib3.PoolManager()
    for entry in entries:
        if entry.path != "logs/only-in-manifest.txt":
            assert http.request("GET", entry.url).data == (tree / entry.path).read_bytes()
    shallow = list_remote(base, max_depth=1)
    assert all(e.path.count("/") <= 1 for e in shallow)
    assert "logs/devstack@c-api.service.log.txt" in [e.path for e in shallow]
    with pytest.raises(FetchError, match="more than 2 files"):
        list_remote(base, max_files=2)


@pytest.mark.parametrize(
    ("body", "message"),
    [("{not json", "not valid JSON"), ('{"files": []}', "no 'tree' list"), ("[]", "no 'tree'")],
)
def test_bad_manifest_is_an_error(tmp_path: Path, serve, body: str, message: str):
    (tmp_path / "zuul-manifest.json").write_text(body)
    base = serve(tmp_path)
    with pytest.raises(FetchError, match=f"zuul-manifest.json: {message}"):
        list_remote(base)


def test_listing_feeds_the_rules(tree: Path, serve):
    for entries in (list_local(tree), list_remote(serve(tree))):
        result = default_rules().select(entries)
        indexed = {r.filename: r.path for r in result if r.indexed}
        assert indexed == {
            "job-output.txt": "job-output.txt.gz",
            "logs/screen-q-svc.txt": "logs/screen-q-svc.txt.gz",
            "logs/syslog.txt": "logs/syslog.txt",
            "logs/devstack@c-api.service.log.txt": "logs/devstack@c-api.service.log.txt",
            "logs/with space/devstack@c-vol.service.log.txt": (
                "logs/with space/devstack@c-vol.service.log.txt"
            ),
        }
        skipped = {r.path: r.reason for r in result if not r.indexed}
        assert skipped["job-output.txt"] == "same file as job-output.txt.gz (preferred)"
        assert str(skipped["logs/apache/deep/er/testrepository.subunit"]).startswith("excluded")
