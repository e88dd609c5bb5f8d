"""`log-shipper`: argument parsing only; one function per subcommand."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from log_shipper.backfill import Backfill, BackfillReport, Checkpoint, RateLimit
from log_shipper.build_sources import (
    BuildRef,
    ZuulFilters,
    builds_from_file,
    builds_from_log_tree,
    builds_from_zuul,
    parse_time,
)
from log_shipper.classify import classification_json, classify, print_classification
from log_shipper.fingerprints import (
    Fingerprint,
    load_fingerprints,
    sink_problems,
    sqlite_problems,
)
from log_shipper.metadata import add_metadata_arguments, add_source_arguments, collect_fields
from log_shipper.plan import BuildPlan, plan_build
from log_shipper.report import (
    FileProgress,
    Progress,
    print_backfill_report,
    print_plan,
    print_report,
)
from log_shipper.rules import Rules, default_rules, load_rules
from log_shipper.submit import Outcome, Submitter
from log_shipper.trend import (
    as_json,
    build_report,
    gather,
    parse_window,
    render_text,
)
from log_shipper.trend_page import render_page
from worker.arguments import add_allow_argument, add_version_argument
from worker.config import SINK_URL_FORMS, WorkerConfig, load_config
from worker.errors import ConfigError, LogIndexerError
from worker.redact import mask_url
from worker.sinks import open_sink
from worker.sinks.base import Sink

if TYPE_CHECKING:
    from log_shipper.local import LocalCluster

DEFAULT_SINK = "sqlite:./logs.db"
# submit --wait's default bound: a large build indexes in a few minutes; a CI hook must
# not wait forever when no worker runs.
SUBMIT_WAIT = 600.0
# backfill's Zuul API filters -> an example value for --help
ZUUL_FILTERS = {
    "job": "tempest-full",
    "project": "openstack/nova",
    "pipeline": "gate",
    "branch": "master",
    "result": "FAILURE",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.command(args)
    except LogIndexerError as exc:
        print(f"log-shipper: error: {mask_url(str(exc))}", file=sys.stderr)
        return 2
    return code


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="log-shipper", description="Index CI build logs and search them."
    )
    add_version_argument(parser)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    index = commands.add_parser(
        "index",
        help="index one build's log tree on this machine (in-process Gearman and workers)",
    )
    index.add_argument("log_root", metavar="LOG_ROOT", help="local directory or URL of the logs")
    add_local_arguments(index)
    add_timeout_argument(index)
    add_metadata_arguments(index)
    add_source_arguments(index)
    index.set_defaults(command=cmd_index)

    submit = commands.add_parser(
        "submit",
        help="the job-completion hook: queue one push-log job per log file of a build",
        description="Never fails the CI build: any problem is one warning line on stderr and "
        "the exit status is 0, unless --strict (one error line, non-zero status). Bounded in "
        "time: a Gearman server is given up after --connect-timeout seconds unreachable or "
        "without taking a job (a few seconds more to say why), and --wait waits at most "
        "--timeout seconds for the answers.",
    )
    where = submit.add_argument_group("the build's logs (at least one)")
    where.add_argument("--log-url", help="URL of the build's log root on the log server")
    where.add_argument(
        "--log-dir",
        help="local copy of the log tree to list (with --log-url, workers fetch from the URL)",
    )
    add_gearman_argument(submit)
    add_local_arguments(submit)
    submit.add_argument("--wait", action="store_true", help="wait for every file's answer")
    submit.add_argument("--dry-run", action="store_true", help="print what would be submitted")
    submit.add_argument("--strict", action="store_true", help="exit non-zero on any problem")
    submit.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="give up on a Gearman server not reached, or not taking a job, within SECONDS "
        "seconds (default: %(default)g)",
    )
    add_timeout_argument(submit, "with --wait: ", default=SUBMIT_WAIT)
    add_metadata_arguments(submit)
    add_source_arguments(submit)
    submit.set_defaults(command=cmd_submit)

    backfill = commands.add_parser(
        "backfill",
        help="(re)index old builds at low priority, resumably",
        description="Builds come from a Zuul API, a file of log URLs or a log-server tree. "
        "Builds whose summary says they are fully indexed with the same rules are skipped.",
    )
    source = backfill.add_mutually_exclusive_group(required=True)
    source.add_argument("--zuul-api", metavar="URL", help="a tenant's API URL (…/api/tenant/T)")
    source.add_argument("--builds-file", metavar="FILE", help="one LOG_URL [JSON] per line")
    source.add_argument("--log-root-url", metavar="URL", help="walk this log-server tree")
    zuul = backfill.add_argument_group("Zuul API filters")
    for name, example in ZUUL_FILTERS.items():
        zuul.add_argument(f"--{name}", help=f"only builds with this {name}, e.g. {example}")
    zuul.add_argument("--since", help="builds that ended at or after this ISO date/time")
    zuul.add_argument("--until", help="builds that ended before this ISO date/time")
    backfill.add_argument(
        "--max-depth",
        type=int,
        default=6,
        metavar="N",
        help="with --log-root-url: look for builds at most N directories down (default: 6)",
    )
    add_gearman_argument(backfill)
    add_local_arguments(backfill)
    backfill.add_argument("--force", action="store_true", help="re-index fully indexed builds")
    backfill.add_argument("--dry-run", action="store_true", help="list the builds, submit none")
    backfill.add_argument(
        "--max-jobs-per-second",
        type=float,
        default=None,
        metavar="RATE",
        help="submit at most RATE jobs per second (default: no limit)",
    )
    backfill.add_argument(
        "--max-in-flight",
        type=int,
        default=50,
        metavar="N",
        help="at most N jobs submitted and not yet answered (default: %(default)s)",
    )
    backfill.add_argument("--checkpoint", metavar="FILE", help="resume from / record to FILE")
    add_timeout_argument(backfill)
    backfill.set_defaults(command=cmd_backfill)

    search = commands.add_parser("search", help="run a Lucene query against a sink")
    search.add_argument(
        "query", metavar="QUERY", help="a Lucene query, e.g. 'loglevel:ERROR AND tags:console'"
    )
    add_reader_arguments(search, "search")
    search.add_argument("--count", action="store_true", help="print only the number of hits")
    search.add_argument("--json", action="store_true", help="one JSON document per line")
    search.add_argument(
        "--size", type=int, default=10, help="how many hits to show (default: %(default)s)"
    )
    search.set_defaults(command=cmd_search)

    add_classify_parser(commands)
    add_report_parser(commands)

    check = commands.add_parser(
        "check-config",
        help="validate the worker configuration and the file rules, then exit",
        description="Exit status 0 when every file given is valid; otherwise one line "
        "naming the file, the key and the problem, and exit status 2.",
    )
    check.add_argument("--config", help="worker configuration YAML (default: none)")
    check.add_argument("--rules", help="file rules YAML (default: config/rules.yaml)")
    check.set_defaults(command=cmd_check_config)
    return parser


def add_reader_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """--sink and --config of the commands that read a sink."""
    parser.add_argument(
        "--sink",
        metavar="URL",
        help=f"the sink to {verb}: {SINK_URL_FORMS} (default: {DEFAULT_SINK})",
    )
    parser.add_argument("--config", help="worker configuration YAML (auth, index names)")


def add_report_parser(commands: Any) -> None:
    report = commands.add_parser(
        "report",
        help="which known bugs (fingerprint queries) failed most builds over a window",
        description="Per bug: matching builds per day by build status, jobs and projects hit, "
        "first and last seen, and the race percentage (its failed builds among all builds of "
        "the jobs it hit); then the failed voting builds no query matched, by job.",
    )
    report.add_argument("--queries", required=True, metavar="DIR", help="a query per YAML file")
    report.add_argument(
        "--since", required=True, help="start: a duration back from now (10d, 12h) or ISO date"
    )
    report.add_argument("--until", help="end (excluded), the same forms (default: now)")
    add_reader_arguments(report, "read")
    report.add_argument("--pipeline", help="only builds of this pipeline, e.g. gate")
    report.add_argument("--html", metavar="FILE", help="also write the report as one page")
    report.add_argument("--json", action="store_true", help="print the report as JSON")
    report.set_defaults(command=cmd_report)


def add_classify_parser(commands: Any) -> None:
    classify = commands.add_parser(
        "classify",
        help="which known bug broke a build: run failure-fingerprint queries against it",
        description="Runs every query of an elastic-recheck query directory against one "
        "build (voting builds only, unless a query says allow-nonvoting) and prints each "
        "matched bug with its hits and first matching line, then the build's error lines "
        "no query matched. Exit status: 0 a known bug matched, 1 none matched, 3 the build "
        "is not fully indexed (yet), 2 a usage error. With --check DIR: validate the query "
        "files instead (exit 0 when all pass, 1 when any has a problem).",
    )
    classify.add_argument("--queries", metavar="DIR", help="directory of <bug>.yaml query files")
    classify.add_argument("--build-uuid", metavar="UUID", help="the build to classify")
    classify.add_argument(
        "--check",
        metavar="DIR",
        help="validate DIR's query files: YAML, keys, types and, without --sink, whether "
        "SQLite's translation runs each query; with --sink, whether that sink runs it",
    )
    add_reader_arguments(classify, "classify on")
    classify.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to SECONDS for the build to be fully indexed (default: %(default)g)",
    )
    classify.add_argument("--json", action="store_true", help="one JSON object")
    classify.set_defaults(command=cmd_classify)


def add_timeout_argument(
    parser: argparse.ArgumentParser, when: str = "", default: float | None = None
) -> None:
    """--timeout, worded the same on every command that waits for answers."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="SECONDS",
        help=f"{when}give up on a file not answered within SECONDS seconds of its "
        f"submission (default: {'no limit' if default is None else f'{default:g}'})",
    )


def add_gearman_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--gearman",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="Gearman server (repeatable: jobs go round the reachable ones; default: --config)",
    )


def add_local_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that can run an in-process worker."""
    parser.add_argument(
        "--sink",
        metavar="URL",
        help=f"index in-process into this sink: {SINK_URL_FORMS} (index: default {DEFAULT_SINK})",
    )
    parser.add_argument("--config", help="worker configuration YAML (limits, auth, servers)")
    parser.add_argument("--rules", help="file rules YAML (default: config/rules.yaml)")
    add_allow_argument(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        metavar="N",
        help="in-process worker threads, for index and --sink (default: %(default)s)",
    )


def worker_config(args: argparse.Namespace) -> WorkerConfig:
    config = load_config(args.config) if args.config else WorkerConfig()
    sink_url = args.sink or (config.sink.url if args.config else DEFAULT_SINK)
    return dataclasses.replace(config, sink=dataclasses.replace(config.sink, url=sink_url))


def log_root_id(root: str) -> str:
    """The canonical name of a log root: a URL with a final slash, or an absolute path."""
    if root.startswith(("http://", "https://")):
        return root.rstrip("/") + "/"
    path = Path(root).resolve()
    if not path.is_dir():
        raise ConfigError(f"{root}: not a directory")
    return str(path)


def local_config(args: argparse.Namespace, allow: Sequence[str], local_files: bool) -> WorkerConfig:
    """The configuration of in-process workers: the sink given, and fetching allowed
    under what the command was pointed at."""
    config = worker_config(args)
    return dataclasses.replace(
        config,
        fetch=dataclasses.replace(
            config.fetch,
            allow=(*config.fetch.allow, *args.allow, *allow),
            allow_local=local_files,
        ),
    )


def local_cluster(config: WorkerConfig, workers: int) -> LocalCluster:
    """The all-in-one mode's Gearman server and workers. Imported here, not at the top:
    only `index` and `backfill --sink` run a worker, and the other commands (the hook
    above all) must not load the worker's runtime (pipeline, metrics, Gearman worker)."""
    from log_shipper.local import LocalCluster

    return LocalCluster(config, workers=max(1, workers))


def run_locally(
    args: argparse.Namespace,
    plan: BuildPlan,
    allow: Sequence[str],
    local_files: bool,
    on_outcome: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    """Index a plan with an in-process Gearman server and workers."""
    config = local_config(args, allow, local_files)
    with local_cluster(config, args.workers) as cluster:
        with Submitter([cluster.address]) as submitter:
            outcomes = submitter.submit(
                plan.submissions, wait=True, timeout=args.timeout, on_outcome=on_outcome
            )
        cluster.sink.refresh()
    return outcomes


def rules_from(args: argparse.Namespace) -> Rules:
    return load_rules(args.rules) if args.rules else default_rules()


def cmd_index(args: argparse.Namespace) -> int:
    root = log_root_id(args.log_root)
    fields = collect_fields(args, os.environ, root, required=())
    plan = plan_build(root, fields, rules_from(args))
    # On stderr: the table on stdout stays the same whether or not a bar was drawn.
    progress = FileProgress(sys.stderr, len(plan.submissions))
    try:
        local = not root.startswith("http")
        outcomes = run_locally(args, plan, [root], local_files=local, on_outcome=progress.update)
    finally:
        progress.close()
    print_report(outcomes, plan.skipped, sys.stdout)
    print(f"sink: {mask_url(worker_config(args).sink.url)}  build_uuid: {fields['build_uuid']}")
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def cmd_check_config(args: argparse.Namespace) -> int:
    """What every command would refuse at start-up, refused now (a ConfigError: exit 2)."""
    if args.config:
        config = load_config(args.config)
        open_sink(config.sink.url, config.sink).close()  # the client's own URL checks
        print(f"{args.config}: ok")
    rules_from(args)
    print(f"{args.rules or 'default rules'}: ok")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    # A log indexer must never fail the CI build it is called from: every problem is one
    # line, and an error status only with --strict.
    try:
        problem, code = submit(args)
    except LogIndexerError as exc:
        problem, code = str(exc), 2
    except Exception as exc:  # a bug of ours must not fail the build either
        problem, code = f"internal error: {type(exc).__name__}: {exc}", 2
    if problem is None:
        return 0
    level = "error" if args.strict else "warning"
    print(f"log-shipper submit: {level}: {mask_url(problem)}", file=sys.stderr)
    return code if args.strict else 0


def submit(args: argparse.Namespace) -> tuple[str | None, int]:
    """The hook's work: (the one-line problem or None, the exit status with --strict)."""
    if not args.log_url and not args.log_dir:
        raise ConfigError("give --log-url URL (the build's log root) and/or --log-dir DIR")
    listing_root = log_root_id(args.log_dir or args.log_url)
    url_root = log_root_id(args.log_url) if args.log_url else None
    fields = collect_fields(args, os.environ, url_root or listing_root)
    plan = plan_build(listing_root, fields, rules_from(args), url_root=url_root)
    if args.dry_run:
        print_plan(plan, sys.stdout)
        return None, 0
    if args.sink:
        local = url_root is None
        outcomes = run_locally(args, plan, [url_root or listing_root], local_files=local)
        print_report(outcomes, plan.skipped, sys.stdout)
        return failures(outcomes), 1
    if url_root is None:
        raise ConfigError("--log-dir alone needs --sink (workers elsewhere cannot read it)")
    config = load_config(args.config) if args.config else WorkerConfig()
    servers = args.gearman or list(config.gearman)
    with Submitter(
        servers, connect_timeout=args.connect_timeout, tls=config.gearman_tls
    ) as submitter:
        outcomes = submitter.submit(plan.submissions, wait=args.wait, timeout=args.timeout)
        warn_failover(submitter, wait=args.wait)
    if args.wait:
        print_report(outcomes, plan.skipped, sys.stdout)
    else:
        queued = sum(1 for outcome in outcomes if outcome.error is None)
        print(f"{queued} of {len(outcomes)} files queued for build {fields['build_uuid']}")
    return failures(outcomes), 1


def warn_failover(submitter: Submitter, *, wait: bool) -> None:
    """One line per Gearman server that took none or only some of its share of the jobs:
    not a failure (the others took them), but an operator should hear of it."""
    # A background job it had taken stays in its queue; a job waited for is given to
    # another server (gearmand keeps no foreground job).
    moved = "its unfinished jobs and those after" if wait else "the jobs after that"
    for server, reason in submitter.unreachable.items():
        print(
            f"log-shipper submit: warning: Gearman server {server} is unreachable ({reason}); "
            "its jobs went to the other servers",
            file=sys.stderr,
        )
    if len(submitter.addresses) > 1:
        for server in submitter.went_away():
            print(
                f"log-shipper submit: warning: Gearman server {server} went away; "
                f"{moved} went to the other servers",
                file=sys.stderr,
            )


def failures(outcomes: Sequence[Outcome]) -> str | None:
    """One line for every file that went wrong, by reason, naming the first file of each."""
    by_reason: dict[str, list[str]] = {}
    for outcome in outcomes:
        if outcome.error is not None:
            by_reason.setdefault(outcome.error, []).append(outcome.path)
        elif outcome.summary is not None and outcome.summary.failed:
            by_reason.setdefault("documents refused by the sink", []).append(outcome.path)
    if not by_reason:
        return None
    count = sum(len(paths) for paths in by_reason.values())
    parts = [
        f"{reason} ({paths[0]}{f' and {len(paths) - 1} more' if len(paths) > 1 else ''})"
        for reason, paths in by_reason.items()
    ]
    return f"{count} of {len(outcomes)} files not indexed: {'; '.join(parts)}"


def cmd_backfill(args: argparse.Namespace) -> int:
    builds = build_source(args)
    rules = rules_from(args)
    allow = [args.log_root_url] if args.log_root_url else []
    progress = Progress(sys.stderr)
    if args.dry_run:
        report = dry_run_backfill(args, builds, rules, progress)
    elif args.sink:
        config = local_config(args, allow, local_files=False)
        if not config.fetch.allow:
            raise ConfigError("backfill --sink needs --allow URL_PREFIX (the log server)")
        with local_cluster(config, args.workers) as cluster:
            with Submitter([cluster.address]) as submitter:
                report = run_backfill(args, builds, rules, submitter, cluster.sink, progress)
            cluster.sink.refresh()
    else:
        config = load_config(args.config) if args.config else WorkerConfig()
        sink = open_sink(config.sink.url, config.sink) if args.config else None
        if sink is None:
            print(
                "log-shipper backfill: note: no --config, so no skipping of indexed builds",
                file=sys.stderr,
            )
        try:
            servers = args.gearman or list(config.gearman)
            with Submitter(servers, tls=config.gearman_tls) as submitter:
                report = run_backfill(args, builds, rules, submitter, sink, progress)
        finally:
            if sink is not None:
                sink.close()
    progress.close()
    print_backfill_report(report, sys.stdout)
    return 1 if report.count("failed") else 0


def dry_run_backfill(
    args: argparse.Namespace, builds: Iterable[BuildRef], rules: Rules, progress: Progress
) -> BackfillReport:
    """List the builds and their plans: no Gearman server, no worker, nothing written
    (the sink, when one is given, is only read to skip fully indexed builds)."""
    sink = None
    if args.sink or args.config:
        config = worker_config(args).sink
        sink = open_sink(config.url, dataclasses.replace(config, install_template=False))
    try:
        return run_backfill(args, builds, rules, None, sink, progress)
    finally:
        if sink is not None:
            sink.close()


def build_source(args: argparse.Namespace) -> Iterator[BuildRef]:
    if args.zuul_api:
        filters = ZuulFilters(
            job=args.job,
            project=args.project,
            pipeline=args.pipeline,
            branch=args.branch,
            result=args.result,
            since=parse_time(args.since, "--since") if args.since else None,
            until=parse_time(args.until, "--until") if args.until else None,
        )
        return builds_from_zuul(args.zuul_api, filters)
    if args.builds_file:
        return builds_from_file(args.builds_file)
    return builds_from_log_tree(args.log_root_url, max_depth=args.max_depth)


def run_backfill(
    args: argparse.Namespace,
    builds: Iterable[BuildRef],
    rules: Rules,
    submitter: Submitter | None,
    sink: Sink | None,
    progress: Progress,
) -> BackfillReport:
    backfill = Backfill(
        submitter=submitter,
        rules=rules,
        sink=sink,
        force=args.force,
        dry_run=args.dry_run,
        max_in_flight=max(1, args.max_in_flight),
        rate=RateLimit(args.max_jobs_per_second),
        checkpoint=Checkpoint(Path(args.checkpoint) if args.checkpoint else None),
        on_result=progress.update,
        timeout=args.timeout,
    )
    return backfill.run(builds)


def open_reader(args: argparse.Namespace) -> Sink:
    """The sink of --sink/--config, opened to be read: nothing installed in it."""
    config = worker_config(args).sink
    return open_sink(config.url, dataclasses.replace(config, install_template=False))


def usable_fingerprints(directory: str, command: str) -> list[Fingerprint]:
    """The query files of `directory` that have no problem; each one left out is said
    in a warning line, and none left is a ConfigError."""
    loaded = load_fingerprints(directory)
    for problem in loaded.problems:
        print(f"log-shipper {command}: warning: left out: {problem}", file=sys.stderr)
    if not loaded.fingerprints:
        raise ConfigError(f"{directory}: no query file without problems")
    return loaded.fingerprints


def cmd_classify(args: argparse.Namespace) -> int:
    if args.check:
        if args.queries or args.build_uuid:
            raise ConfigError("classify --check DIR takes no --queries or --build-uuid")
        return check_queries(args)
    if not args.queries or not args.build_uuid:
        raise ConfigError("classify needs --queries DIR and --build-uuid UUID (or --check DIR)")
    if args.wait < 0:
        raise ConfigError(f"--wait must be 0 or more seconds, not {args.wait:g}")
    fingerprints = usable_fingerprints(args.queries, "classify")
    sink = open_reader(args)
    try:
        result = classify(sink, fingerprints, args.build_uuid, args.wait)
    finally:
        sink.close()
    if args.json:
        sys.stdout.buffer.write(
            orjson.dumps(classification_json(result), option=orjson.OPT_APPEND_NEWLINE)
        )
    else:
        print_classification(result, sys.stdout)
    return result.exit_status


def check_queries(args: argparse.Namespace) -> int:
    loaded = load_fingerprints(args.check)
    problems = list(loaded.problems)
    if args.sink or args.config:
        sink = open_reader(args)
        try:
            problems.extend(sink_problems(loaded.fingerprints, sink))
            # An engine parses a query on each index it searches: with none, it read none.
            empty = sink.count() == 0
        finally:
            sink.close()
        against = f"run on {mask_url(worker_config(args).sink.url)}"
        if empty:
            against += ", which holds no documents: an engine checks no query then"
    else:
        problems.extend(sqlite_problems(loaded.fingerprints))
        against = "parsed and translated for SQLite; the engines take full query_string syntax"
    for problem in problems:
        print(mask_url(problem))
    bad = len({problem.split(": ", 1)[0] for problem in problems})
    if bad:
        print(f"{args.check}: {bad} of {_files(loaded.files)} with problems ({against})")
        return 1
    print(f"{args.check}: {_files(loaded.files)} ok ({against})")
    return 0


def _files(count: int) -> str:
    return f"{count} query file{'' if count == 1 else 's'}"


def cmd_search(args: argparse.Namespace) -> int:
    sink = open_reader(args)
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


def cmd_report(args: argparse.Namespace) -> int:
    window = parse_window(args.since, args.until, datetime.now(UTC))
    fingerprints = usable_fingerprints(args.queries, "report")
    sink = open_reader(args)
    try:
        data = gather(sink, fingerprints, window, args.pipeline)
    finally:
        sink.close()
    result = build_report(fingerprints, data)
    if args.html:
        try:
            Path(args.html).write_text(render_page(result), encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"--html {args.html}: {exc.strerror}") from None
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(as_json(result), option=orjson.OPT_APPEND_NEWLINE))
    else:
        width = os.get_terminal_size().columns if sys.stdout.isatty() else 200
        render_text(result, sys.stdout, width)
    return 0


if __name__ == "__main__":
    sys.exit(main())
