"""`log-shipper`: argument parsing only; one function per subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import orjson

from log_shipper.listing import list_tree
from log_shipper.local import LocalCluster
from log_shipper.metadata import add_metadata_arguments, fields_from_args
from log_shipper.report import print_report
from log_shipper.rules import default_rules, load_rules
from log_shipper.submit import Submitter, submissions_for
from worker.config import WorkerConfig, load_config
from worker.errors import LogIndexerError
from worker.sinks import open_sink

DEFAULT_SINK = "sqlite:./logs.db"


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.command(args)
    except LogIndexerError as exc:
        print(f"log-shipper: error: {exc}", file=sys.stderr)
        return 2
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="log-shipper", description="Index CI build logs and search them."
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    index = commands.add_parser(
        "index",
        help="index one build's log tree on this machine (in-process Gearman and workers)",
    )
    index.add_argument("log_root", metavar="LOG_ROOT", help="local directory or URL of the logs")
    index.add_argument("--sink", help=f"where documents go (default {DEFAULT_SINK})")
    index.add_argument("--config", help="worker configuration YAML (limits, auth, prefix)")
    index.add_argument("--rules", help="file rules YAML (default: config/rules.yaml)")
    index.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="URL_PREFIX",
        help="also allow fetching under this prefix (repeatable)",
    )
    index.add_argument("--workers", type=int, default=2, help="worker threads (default 2)")
    index.add_argument("--timeout", type=float, default=None, help="give up after SECONDS")
    add_metadata_arguments(index)
    index.set_defaults(command=cmd_index)

    search = commands.add_parser("search", help="run a Lucene query against a sink")
    search.add_argument("query", metavar="QUERY")
    search.add_argument("--sink", help=f"the sink to search (default {DEFAULT_SINK})")
    search.add_argument("--config", help="worker configuration YAML (auth, index prefix)")
    search.add_argument("--count", action="store_true", help="print only the number of hits")
    search.add_argument("--json", action="store_true", help="one JSON document per line")
    search.add_argument("--size", type=int, default=10, help="hits to show (default 10)")
    search.set_defaults(command=cmd_search)
    return parser


def worker_config(args: argparse.Namespace) -> WorkerConfig:
    config = load_config(args.config) if args.config else WorkerConfig()
    sink_url = args.sink or (config.sink.url if args.config else DEFAULT_SINK)
    return dataclasses.replace(config, sink=dataclasses.replace(config.sink, url=sink_url))


def cmd_index(args: argparse.Namespace) -> int:
    config = worker_config(args)
    log_root = args.log_root
    is_url = log_root.startswith(("http://", "https://"))
    if is_url:
        root_id = log_root.rstrip("/") + "/"
    else:
        root_id = str(Path(log_root).resolve())
        if not Path(root_id).is_dir():
            raise LogIndexerError(f"{log_root}: not a directory")
    config = dataclasses.replace(
        config,
        fetch=dataclasses.replace(
            config.fetch,
            allow=(*config.fetch.allow, *args.allow, root_id),
            allow_local=not is_url,
        ),
    )
    rules = load_rules(args.rules) if args.rules else default_rules()
    fields = fields_from_args(args, root_id)
    selected = rules.select(list_tree(root_id), fields)
    submissions = submissions_for(selected, fields)
    skipped = [item for item in selected if not item.indexed]
    with LocalCluster(config, workers=max(1, args.workers)) as cluster:
        with Submitter([cluster.address]) as submitter:
            outcomes = submitter.submit(submissions, wait=True, timeout=args.timeout)
        cluster.sink.refresh()
    print_report(outcomes, skipped, sys.stdout)
    print(f"sink: {config.sink.url}  build_uuid: {fields['build_uuid']}")
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def cmd_search(args: argparse.Namespace) -> int:
    config = worker_config(args).sink
    sink = open_sink(config.url, dataclasses.replace(config, install_template=False))
    try:
        if args.count:
            print(sink.count(args.query))
            return 0
        result = sink.search(args.query, size=args.size)
    finally:
        sink.close()
    if args.json:
        for hit in result.hits:
            sys.stdout.buffer.write(orjson.dumps(hit, option=orjson.OPT_APPEND_NEWLINE))
        return 0
    print(f"{result.total} hits")
    width = os.get_terminal_size().columns if sys.stdout.isatty() else 200
    for hit in result.hits:
        first_line = str(hit.get("message", "")).split("\n", 1)[0]
        where = f"{hit.get('filename', '')}:{hit.get('line_number', '')}"
        level = hit.get("loglevel", "")
        print(f"{hit.get('@timestamp', '')} {where} {level} {first_line}"[:width])
    return 0


if __name__ == "__main__":
    sys.exit(main())
