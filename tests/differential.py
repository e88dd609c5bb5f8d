"""The differential test of search across sinks: the same builds in SQLite,
Elasticsearch and OpenSearch, the same queries, and where the answers differ.

Used by tests/integration/test_differential.py and by tools/differential, which loads
this file by its path so that a developer can run it against another checkout's code
(`PYTHONPATH=/other/checkout tools/differential run`). So it imports nothing from
`tests`: only the standard library, third-party packages and the code under test.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import yaml

import log_shipper
from worker.config import SinkConfig
from worker.errors import LogIndexerError, QueryError, one_line
from worker.sinks import open_sink
from worker.sinks.base import Searcher

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "tests" / "data" / "differential"
BUILDS = DATA / "builds.yaml"
RULES = DATA / "rules.yaml"
QUERIES = DATA / "queries.txt"
KNOWN = DATA / "known-differences.txt"
# The same default as tests/paths.py (not imported from there: see the docstring).
CORPUS = Path(os.environ.get("LOG_INDEXER_CORPUS", REPO.parent / "shared" / "corpus"))

# Up to this many hits a query's answer is its set of document ids, not only its count.
MAX_IDS = 200
# The agreement the differential test requires (issue 12).
REQUIRED = 0.99
REFERENCES = ("elasticsearch", "opensearch")


@dataclass(frozen=True)
class File:
    source: str  # a corpus file
    lines: tuple[tuple[int, int], ...] | None = None  # only these (first, last) lines


@dataclass(frozen=True)
class Build:
    flags: dict[str, str]  # log-shipper index flags (without --) -> value
    files: dict[str, File]  # path in the build's tree -> what it is made of


@dataclass(frozen=True)
class Query:
    category: str
    text: str


@dataclass(frozen=True)
class Answer:
    """What one sink answered to one query: a count (and the ids of the hits when
    there are at most MAX_IDS), or the one line it refused the query with."""

    count: int | None = None
    ids: frozenset[str] | None = None
    refused: str | None = None


@dataclass(frozen=True)
class Difference:
    query: Query
    answers: dict[str, Answer]  # sink name -> answer


@dataclass(frozen=True)
class Comparison:
    compared: int  # queries on which the references agree
    agreed: int  # ... and SQLite agrees with them
    differences: list[Difference]  # SQLite differs from the agreeing references
    reference_differences: list[Difference]  # the references differ or refuse: not counted
    # category -> [queries compared, of which the references found hits, SQLite agreed]
    categories: dict[str, list[int]] = dataclasses.field(default_factory=dict)

    @property
    def agreement(self) -> float:
        return self.agreed / self.compared if self.compared else 0.0


def _file(raw: str | dict[str, str]) -> File:
    if isinstance(raw, str):
        return File(raw)
    ranges = []
    for part in raw["lines"].split():
        first, _, last = part.partition("-")
        ranges.append((int(first), int(last)))
    return File(raw["source"], tuple(ranges))


def load_builds(path: Path = BUILDS) -> list[Build]:
    raw = yaml.safe_load(path.read_text())
    return [
        Build(
            {name: str(value) for name, value in build["flags"].items()},
            {relative: _file(spec) for relative, spec in build["files"].items()},
        )
        for build in raw["builds"]
    ]


def _copy(file: File, corpus: Path, target: Path) -> None:
    source = corpus / file.source
    if file.lines is None:
        shutil.copyfile(source, target)
        return
    packed = source.suffix == ".gz"
    data = source.read_bytes()
    lines = (gzip.decompress(data) if packed else data).split(b"\n")
    kept = b"".join(line + b"\n" for first, last in file.lines for line in lines[first - 1 : last])
    # mtime 0: the same bytes on every run.
    target.write_bytes(gzip.compress(kept, mtime=0) if packed else kept)


def make_trees(root: Path, builds: Sequence[Build], corpus: Path = CORPUS) -> list[Path]:
    """Each build's log tree under `root` (one directory per build), from the corpus."""
    trees = []
    for number, build in enumerate(builds, 1):
        tree = root / f"build-{number}"
        for relative, file in build.files.items():
            target = tree / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            _copy(file, corpus, target)
        trees.append(tree)
    return trees


def index_build(config: Path, tree: Path, build: Build) -> None:
    """`log-shipper index` a build's tree into the sink of worker configuration
    `config`, as a user would, in a process of its own running the code this process
    imported; raises with its report if a file was not indexed."""
    code_root = Path(log_shipper.__file__).resolve().parents[1]
    path = os.environ.get("PYTHONPATH")
    env = {**os.environ, "PYTHONPATH": f"{code_root}{os.pathsep}{path}" if path else str(code_root)}
    flags = [f"--{name}={value}" for name, value in build.flags.items()]
    argv = ["index", str(tree), "--config", str(config), "--rules", str(RULES), *flags]
    command = [sys.executable, "-m", "log_shipper.cli", *argv]
    # Run from the tree's directory: `-m` puts the working directory first on sys.path,
    # where another checkout's code would win over the code this process imported.
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=600, cwd=tree.parent
    )
    if done.returncode != 0:
        raise LogIndexerError(f"log-shipper index {tree} failed:\n{done.stdout}{done.stderr}")


class Dataset:
    """The builds indexed into each sink: `urls` maps a sink's name (sqlite,
    elasticsearch, opensearch) to its URL; the engines' indices are under `prefix`."""

    def __init__(self, work: Path, urls: Mapping[str, str], prefix: str) -> None:
        self.work = work
        self.urls = dict(urls)
        self.prefix = prefix
        self.builds = load_builds()
        self.configs = {
            name: write_config(work / f"{name}.yaml", url, None if name == "sqlite" else prefix)
            for name, url in self.urls.items()
        }

    def index(self, engines: bool = True) -> None:
        """Index every build into SQLite and (unless `engines` is false: their indices
        are there already) into the engines: each engine's builds at once (most of an
        engine's time is spent waiting for refreshes), SQLite's one after another (one
        writer at a time)."""
        trees = make_trees(self.work / "trees", self.builds)
        pairs = list(zip(trees, self.builds, strict=True))
        others = [name for name in self.urls if name != "sqlite"] if engines else []

        def into_sqlite() -> None:
            for tree, build in pairs:
                index_build(self.configs["sqlite"], tree, build)

        with ThreadPoolExecutor(1 + len(pairs) * len(others)) as pool:
            futures = [pool.submit(into_sqlite)]
            futures += [
                pool.submit(index_build, self.configs[name], tree, build)
                for name in others
                for tree, build in pairs
            ]
            for future in futures:
                future.result()

    def searchers(self) -> dict[str, Searcher]:
        return {
            name: open_searcher(url, None if name == "sqlite" else self.prefix)
            for name, url in self.urls.items()
        }

    def counts(self) -> dict[str, int]:
        """How many documents each sink has."""
        return {name: searcher.count("*") for name, searcher in self.searchers().items()}


def write_config(path: Path, url: str, prefix: str | None = None) -> Path:
    """A worker configuration for sink `url`; on an engine, indices under `prefix` and
    the build index beside them (tests.engines.build_index_for's name)."""
    sink: dict[str, str] = {"url": url}
    if prefix is not None:
        sink["index_prefix"] = prefix
        sink["build_index"] = f"ci-log-builds-{prefix.strip('-')}"
    path.write_text(yaml.safe_dump({"sink": sink}))
    return path


def open_searcher(url: str, prefix: str | None = None) -> Searcher:
    config = SinkConfig(url=url, install_template=False)
    if prefix is not None:
        config = dataclasses.replace(config, index_prefix=prefix)
    return open_sink(url, config)


def _pairs(path: Path, shape: str) -> list[tuple[str, str]]:
    """The `A<TAB>B` lines of a data file (`shape` names A and B), without its blank
    lines and `#` comment lines."""
    pairs = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        first, tab, second = line.partition("\t")
        if not tab or not first.strip() or not second.strip():
            raise LogIndexerError(f"{path}:{number}: not '{shape}': {line!r}")
        pairs.append((first, second))
    return pairs


def load_queries(path: Path = QUERIES) -> list[Query]:
    """`category<TAB>query` lines (a query has no tab)."""
    return [Query(category, text) for category, text in _pairs(path, "category<TAB>query")]


def write_queries(path: Path, queries: Iterable[Query], header: str) -> None:
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    lines += [f"{q.category}\t{q.text}" for q in queries]
    path.write_text("\n".join(lines) + "\n")


def ask(searcher: Searcher, query: str) -> Answer:
    try:
        result = searcher.search(query, size=MAX_IDS)
    except QueryError as exc:
        return Answer(refused=one_line(str(exc)))
    except LogIndexerError as exc:  # a failure, not a refusal: shown, not hidden
        return Answer(refused=f"failed: {one_line(str(exc))}")
    if result.total > MAX_IDS:
        return Answer(count=result.total)
    return Answer(count=result.total, ids=frozenset(str(hit["_id"]) for hit in result.hits))


def ask_all(
    searchers: Mapping[str, Searcher], queries: Sequence[Query], per_sink: int = 3
) -> dict[str, list[Answer]]:
    """Every sink's answers to every query, `per_sink` queries of each sink at a time
    (an engine's answer is mostly waiting)."""
    with ThreadPoolExecutor(per_sink * len(searchers)) as pool:
        futures = {
            name: [pool.submit(ask, searcher, query.text) for query in queries]
            for name, searcher in searchers.items()
        }
        return {name: [f.result() for f in pending] for name, pending in futures.items()}


def compare(queries: Sequence[Query], answers: Mapping[str, Sequence[Answer]]) -> Comparison:
    """SQLite against the references, on the queries the references agree on."""
    agreed = compared = 0
    differences: list[Difference] = []
    reference_differences: list[Difference] = []
    categories: dict[str, list[int]] = {}
    for i, query in enumerate(queries):
        these = {name: answers[name][i] for name in answers}
        first, *others = (these[name] for name in REFERENCES)
        if first.refused is not None or any(other != first for other in others):
            reference_differences.append(Difference(query, these))
            continue
        compared += 1
        tally = categories.setdefault(query.category, [0, 0, 0])
        tally[0] += 1
        tally[1] += bool(first.count)
        if these["sqlite"] == first:
            agreed += 1
            tally[2] += 1
        else:
            differences.append(Difference(query, these))
    return Comparison(compared, agreed, differences, reference_differences, categories)


def load_known(path: Path = KNOWN) -> dict[str, str]:
    """Known differences, `query<TAB>reason` lines: query -> reason."""
    return dict(_pairs(path, "query<TAB>reason"))


def _cell(answer: Answer, answers: Mapping[str, Answer]) -> str:
    if answer.refused is not None:
        return "refused"
    reference = answers["elasticsearch"]
    if answer.count == reference.count and answer.ids != reference.ids:
        return f"{answer.count}*"  # the same number of other documents
    return str(answer.count)


def table(differences: Sequence[Difference], known: Mapping[str, str] | None = None) -> str:
    """One row per difference: whether it is known (with `known`), the category, each
    sink's answer (SQLite's refusal on the line below), the query."""
    names = ("elasticsearch", "opensearch", "sqlite")
    rows = [f"{'':<6}{'category':<12} {'ES':>7} {'OS':>7} {'SQLite':>7}  query"]
    for difference in differences:
        text = difference.query.text
        label = "" if known is None else "known" if text in known else "NEW"
        cells = [_cell(difference.answers[name], difference.answers) for name in names]
        row = (
            f"{label:<6}{difference.query.category:<12} {cells[0]:>7} {cells[1]:>7} {cells[2]:>7}  "
        )
        rows.append(row + text)
        refused = difference.answers["sqlite"].refused
        if refused is not None:
            rows.append(" " * len(row) + refused)
    return "\n".join(rows)


def report(comparison: Comparison, known: Mapping[str, str]) -> str:
    """The agreement, the table of SQLite's differences (with their known reason, or
    NEW), and the queries the engines do not agree on."""
    lines = [
        f"SQLite agrees with Elasticsearch and OpenSearch on {comparison.agreed} of "
        f"{comparison.compared} queries: {comparison.agreement:.1%} (required: {REQUIRED:.0%}); "
        f"the engines find hits for {sum(t[1] for t in comparison.categories.values())} of them",
        f"{len(comparison.differences)} differences "
        f"({sum(d.query.text not in known for d in comparison.differences)} not in "
        f"{KNOWN.name}):",
        table(comparison.differences, known),
        "by category: queries, of which the engines find hits, SQLite agrees:",
        *(
            f"  {category:<12} {total:>4} {hits:>4} {agreed:>4}"
            for category, (total, hits, agreed) in sorted(comparison.categories.items())
        ),
    ]
    if comparison.reference_differences:
        lines += [
            f"{len(comparison.reference_differences)} queries the engines do not agree on "
            "(not counted):",
            table(comparison.reference_differences),
        ]
    return "\n".join(lines)
