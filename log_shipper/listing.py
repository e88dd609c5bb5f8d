"""The files of a build's log tree: a local directory, a zuul-manifest.json, or HTTP index pages.

Every listing gives paths relative to the log root, in POSIX form and sorted, so the file
rules and the documents' `filename` field do not depend on where the tree was read from.
"""

from __future__ import annotations

import html.parser
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urldefrag, urljoin, urlsplit
from urllib.request import url2pathname

import orjson
import urllib3

from worker.errors import FetchError
from worker.redact import mask_url

log = logging.getLogger(__name__)

MANIFEST_NAME = "zuul-manifest.json"
DIRECTORY_MIMETYPE = "application/directory"
# Index pages and manifests are read whole; these caps keep a wrong URL (a huge file
# instead of an index page) from filling memory.
MAX_INDEX_BYTES = 16 * 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_REDIRECTS = 5
# Object stores answer 403 rather than 404 for a missing object when listing is not
# allowed, so either means "no manifest here".
_NO_MANIFEST = frozenset({403, 404, 410})


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the log root, POSIX separators
    url: str  # absolute URL, or absolute local path
    size: int | None = None  # bytes as stored (compressed for .gz); None when not listed


def list_tree(root: str, **remote_options: Any) -> list[FileEntry]:
    """List a log tree given as an http(s) URL, a file:// URL or a local path."""
    scheme = urlsplit(root).scheme.lower()
    if scheme in ("http", "https"):
        return list_remote(root, **remote_options)
    if scheme == "file":
        return list_local(Path(url2pathname(urlsplit(root).path)))
    return list_local(Path(root))


def list_local(root: Path) -> list[FileEntry]:
    """Every file under `root`, following symlinks only when they stay inside it."""
    try:
        real_root = root.resolve(strict=True)
    except OSError as exc:
        raise FetchError(f"{root}: cannot list: {exc.strerror or exc}") from None
    if not real_root.is_dir():
        raise FetchError(f"{root}: not a directory")
    entries: list[FileEntry] = []
    # Directory symlinks can form cycles; each real directory is walked once.
    visited = {real_root}
    pending: list[tuple[Path, str]] = [(real_root, "")]
    while pending:
        directory, prefix = pending.pop()
        try:
            children = list(os.scandir(directory))
        except OSError as exc:
            raise FetchError(f"{directory}: cannot list: {exc.strerror or exc}") from None
        for child in children:
            relative = f"{prefix}{child.name}"
            path = Path(child.path)
            if child.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    continue  # dangling or looping link: nothing to index
                if not target.is_relative_to(real_root):
                    # A link out of the tree could expose any file on the machine.
                    continue
            else:
                target = path
            if target.is_dir():
                real = target.resolve()
                if real not in visited:
                    visited.add(real)
                    pending.append((path, f"{relative}/"))
            elif target.is_file():
                entries.append(FileEntry(relative, str(path), target.stat().st_size))
    entries.sort(key=lambda entry: entry.path)
    return entries


def list_remote(
    root_url: str,
    *,
    max_depth: int = 10,
    max_files: int = 100_000,
    connect_timeout: float = 10.0,
    read_timeout: float = 30.0,
    retries: int = 2,
    http: urllib3.PoolManager | None = None,
) -> list[FileEntry]:
    """List a remote log tree from its zuul-manifest.json, else from its index pages.

    `max_depth` is how many directory levels below the root are entered (deeper ones
    are left out with a warning); more than `max_files` files is an error rather than
    a silently incomplete listing.
    """
    root = root_url if root_url.endswith("/") else root_url + "/"
    if http is None:
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=connect_timeout, read=read_timeout),
            retries=urllib3.Retry(
                total=retries,
                status_forcelist=(500, 502, 503, 504),
                backoff_factor=0.5,
                raise_on_status=False,
            ),
        )
    manifest_url = root + MANIFEST_NAME
    status, body, _, _ = _get(http, manifest_url, MAX_MANIFEST_BYTES)
    if status == 200:
        entries = _from_manifest(root, manifest_url, body, max_depth, max_files)
    elif status in _NO_MANIFEST:
        entries = _from_index_pages(http, root, max_depth, max_files)
    else:
        raise FetchError(f"GET {manifest_url}: HTTP {status}")
    entries.sort(key=lambda entry: entry.path)
    return entries


def _from_manifest(
    root: str, manifest_url: str, body: bytes, max_depth: int, max_files: int
) -> list[FileEntry]:
    try:
        manifest = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise FetchError(f"{manifest_url}: not valid JSON: {exc}") from None
    tree = manifest.get("tree") if isinstance(manifest, dict) else None
    if not isinstance(tree, list):
        raise FetchError(f"{manifest_url}: no 'tree' list")
    entries: list[FileEntry] = []
    for relative, node in _walk_manifest(tree, "", 0, max_depth, manifest_url):
        size = node.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            size = None
        entries.append(FileEntry(relative, root + quote(relative), size))
        if len(entries) > max_files:
            raise FetchError(f"{manifest_url}: more than {max_files} files")
    return entries


def _walk_manifest(
    nodes: list[Any], prefix: str, depth: int, max_depth: int, manifest_url: str
) -> Iterator[tuple[str, dict[str, Any]]]:
    for node in nodes:
        if not isinstance(node, dict):
            continue
        name = node.get("name")
        # A name that climbs out of the tree or nests paths would make a URL outside
        # the build's logs; the manifest is data from the build, so it is not trusted.
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name:
            log.warning("%s: ignoring entry with name %r", mask_url(manifest_url), name)
            continue
        children = node.get("children")
        if children is not None or node.get("mimetype") == DIRECTORY_MIMETYPE:
            if depth >= max_depth:
                log.warning(
                    "%s: not entering %s%s/ (max_depth)", mask_url(manifest_url), prefix, name
                )
                continue
            if isinstance(children, list):
                yield from _walk_manifest(
                    children, f"{prefix}{name}/", depth + 1, max_depth, manifest_url
                )
        else:
            yield f"{prefix}{name}", node


class _LinkParser(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag != "a":
            return
        for name, value in attrs:
            if name == "href" and value:
                self.hrefs.append(value.strip())


def _from_index_pages(
    http: urllib3.PoolManager, root: str, max_depth: int, max_files: int
) -> list[FileEntry]:
    entries: list[FileEntry] = []
    seen: set[str] = set()
    pages: deque[tuple[str, int]] = deque([(root, 0)])
    while pages:
        page_url, depth = pages.popleft()
        status, body, content_type, final_url = _get(http, page_url, MAX_INDEX_BYTES)
        if status != 200:
            raise FetchError(f"GET {page_url}: HTTP {status}")
        if "html" not in content_type.lower():
            raise FetchError(f"GET {page_url}: not a directory index ({content_type or '?'})")
        if depth == 0:
            # e.g. http:// redirected to https://: the tree is where the root page is.
            root = final_url if final_url.endswith("/") else final_url + "/"
        for link in _child_links(final_url, body):
            if link in seen:
                continue  # index pages often link an entry twice (icon and name)
            seen.add(link)
            if not link.startswith(root):
                log.warning(
                    "%s: ignoring %s, redirected out of the tree", mask_url(root), mask_url(link)
                )
                continue
            relative = unquote(link[len(root) :])
            if link.endswith("/"):
                if depth + 1 > max_depth:
                    log.warning("%s: not entering %s (max_depth)", mask_url(root), relative)
                else:
                    pages.append((link, depth + 1))
                continue
            entries.append(FileEntry(relative, link, None))
            if len(entries) > max_files:
                raise FetchError(f"{root}: more than {max_files} files")
    return entries


def _child_links(page_url: str, body: bytes) -> Iterator[str]:
    """Absolute URLs of the entries of one index page, its own children only.

    Keeping only links strictly below the page drops "../", "/", links to other hosts
    and Apache's column-sort links ("?C=N;O=D"), whatever their markup.
    """
    parser = _LinkParser()
    parser.feed(body.decode("utf-8", errors="replace"))
    parser.close()
    for href in parser.hrefs:
        if href.startswith(("?", "#", "mailto:", "javascript:")):
            continue
        url, _ = urldefrag(urljoin(page_url, href))
        if "?" in url:
            continue
        if url.startswith(page_url) and len(url) > len(page_url):
            child = url[len(page_url) :]
            # Only direct children; deeper links are found on their own directory's page.
            if "/" not in child.rstrip("/"):
                yield url


def _get(http: urllib3.PoolManager, url: str, limit: int) -> tuple[int, bytes, str, str]:
    """GET `url` whole (up to `limit` bytes): status, body, content type and final URL.

    Redirects are followed here rather than by urllib3 so that the final URL is known:
    links on an index page are relative to where the page really is.
    """
    for _ in range(MAX_REDIRECTS + 1):
        try:
            response = http.request("GET", url, preload_content=False, redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise FetchError(f"GET {url}: {_reason(exc)}") from None
        try:
            # Error and redirect bodies are read too: a connection with an unread body
            # cannot go back to the pool.
            chunks: list[bytes] = []
            total = 0
            for chunk in response.stream(64 * 1024):
                total += len(chunk)
                if total > limit:
                    response.close()  # not worth reading the rest to keep the connection
                    raise FetchError(f"GET {url}: larger than {limit} bytes")
                chunks.append(chunk)
        except urllib3.exceptions.HTTPError as exc:
            raise FetchError(f"GET {url}: {_reason(exc)}") from None
        finally:
            response.release_conn()
        location = response.get_redirect_location()
        if location:
            url = urljoin(url, location)
            continue
        content_type = response.headers.get("Content-Type", "")
        return response.status, b"".join(chunks), content_type, url
    raise FetchError(f"GET {url}: more than {MAX_REDIRECTS} redirects")


def _reason(exc: urllib3.exceptions.HTTPError) -> str:
    """One readable line instead of urllib3's nested, object-repr-laden message."""
    reason: BaseException = exc
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        reason = exc.reason
    text = str(reason)
    # "<urllib3.connection.HTTPConnection object at 0x...>: Failed to establish ..."
    if text.startswith("<") and ">: " in text:
        text = text.split(">: ", 1)[1]
    return " ".join(text.split()) or type(reason).__name__


def index_page_links(http: urllib3.PoolManager, url: str) -> tuple[str, list[str]]:
    """The final URL of a directory index page and the absolute URLs of its entries."""
    status, body, content_type, final_url = _get(http, url, MAX_INDEX_BYTES)
    if status != 200:
        raise FetchError(f"GET {url}: HTTP {status}")
    if "html" not in content_type.lower():
        raise FetchError(f"GET {url}: not a directory index ({content_type or '?'})")
    return final_url, list(dict.fromkeys(_child_links(final_url, body)))
