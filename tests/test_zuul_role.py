"""The Zuul role config/ci/zuul/roles/submit-logs-to-indexer, run by a real
`ansible-playbook` (local connection) with the files and variables a Zuul executor gives
a post-run playbook, against a real gearmand; the queued push-log jobs are read back from
gearmand by a gear worker.

What Zuul gives (zuul and zuul-jobs sources):
- the inventory (all.vars.zuul, with zuul.executor.{work_root,log_root,result_data_file,
  inventory_file}) and extra variables (-e zuul_success=..., site variables such as
  zuul_log_url);
- `work/results.json`, created empty when the build starts; zuul_return (which the log
  upload roles call with `zuul.log_url`) writes {"data": ..., "secret_data": ...} to it;
- zuul-jobs' upload-logs returns `{{ zuul_log_url }}/{{ zuul_log_path }}/`: zuul_log_url
  is the log server's base URL, zuul_log_path the build's path on it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gearmand import Gearmand, queued_jobs
from tests.httpserver import free_port
from tests.integration.trees import make_tree
from tests.paths import DATA, REPO, write_log_shipper
from tests.test_submit_cli import clean_environment

ZUUL = REPO / "config" / "ci" / "zuul"
PLAYBOOK = ZUUL / "playbooks" / "post-logs-index.yaml"
INVENTORY = DATA / "zuul" / "inventory.yaml"

# The build's log tree on the executor: relative path -> corpus file. The first two are
# selected by config/rules.yaml, zuul-info/ is excluded.
LOGS = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
    "zuul-info/inventory.yaml": "zuul-jobs-fixture/job-output.txt",
}
SELECTED = ["job-output.txt", "logs/devstack@c-api.service.log.txt"]

RETURNED = "https://logs.example.org/63/12345/3/gate/tempest-full/7c3e5a9/"
LOG_SERVER = "https://logs.example.org"  # zuul_log_url
LOG_PATH = "63/12345/3/gate/tempest-full/7c3e5a9"  # zuul_log_path
FROM_LOG_PATH = "https://logs.example.org/63/12345/3/gate/tempest-full/7c3e5a9/"
BASE_URL_ONLY = "https://logs.example.org/"  # what the role used to take as the build's URL
BASE_AND_PATH = {"zuul_log_url": LOG_SERVER, "zuul_log_path": LOG_PATH}


@dataclass
class Executor:
    """A Zuul executor's build directory, as the role sees it."""

    root: Path
    gearmand: Gearmand
    bin: Path

    @property
    def work_root(self) -> Path:
        return self.root / "work"

    @property
    def results(self) -> Path:
        return self.work_root / "results.json"

    @property
    def inventory(self) -> Path:
        return self.root / "ansible" / "inventory.yaml"

    def run(
        self, results: str | None, extra_vars: dict[str, Any], zuul_success: str = "False"
    ) -> subprocess.CompletedProcess[str]:
        """ansible-playbook of the post-run playbook, as the executor runs it."""
        if results is None:
            self.results.unlink(missing_ok=True)
        else:
            self.results.write_text(results)
        # Site variables and the test's gearmand; extra variables win over the
        # playbook's own submit_logs_gearman, as they would in Zuul.
        site_vars = self.root / "ansible" / "extra_vars.yaml"
        site_vars.write_text(
            json.dumps({"submit_logs_gearman": [self.gearmand.address], **extra_vars})
        )
        playbook = shutil.which("ansible-playbook", path=str(Path(sys.executable).parent))
        playbook = playbook or shutil.which("ansible-playbook")
        assert playbook, "ansible-playbook is missing: pip install ansible-core"
        env = clean_environment()
        env.update(
            PATH=f"{self.bin}:{env['PATH']}",
            ANSIBLE_ROLES_PATH=str(ZUUL / "roles"),
            ANSIBLE_HOME=str(self.root / "ansible-home"),
            ANSIBLE_LOCAL_TEMP=str(self.root / "ansible-tmp"),
            ANSIBLE_NOCOLOR="1",
            ANSIBLE_RETRY_FILES_ENABLED="0",
        )
        try:
            return subprocess.run(
                [
                    playbook,
                    *("-i", str(self.inventory)),
                    *("-e", f"@{site_vars}"),
                    *("-e", f"zuul_success={zuul_success}", "-e", "zuul_will_retry=False"),
                    str(PLAYBOOK),
                ],
                cwd=self.work_root,
                env=env,
                capture_output=True,
                text=True,
                timeout=180,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError("ansible-playbook hung (180 s)") from exc


@pytest.fixture
def executor(tmp_path: Path, gearmand: Gearmand) -> Executor:
    root = tmp_path / "build"
    make_tree(root / "work" / "logs", LOGS)
    inventory = yaml.safe_load(INVENTORY.read_text())
    zuul = inventory["all"]["vars"]["zuul"]
    zuul["executor"].update(
        work_root=str(root / "work"),
        log_root=str(root / "work" / "logs"),
        src_root=str(root / "work" / "src"),
        result_data_file=str(root / "work" / "results.json"),
        inventory_file=str(root / "ansible" / "inventory.yaml"),
    )
    (root / "ansible").mkdir()
    text = yaml.safe_dump(inventory, sort_keys=False)
    # Zuul tags untrusted strings !unsafe in the inventory it gives Ansible.
    text = text.replace("  change_message: ", "  change_message: !unsafe ", 1)
    assert "!unsafe" in text
    (root / "ansible" / "inventory.yaml").write_text(text)
    bin_dir = write_log_shipper(tmp_path / "bin").parent  # the executor's log-shipper
    return Executor(root, gearmand, bin_dir)


def returned(data: dict[str, Any]) -> str:
    """results.json as zuul_return writes it."""
    return json.dumps({"data": data, "secret_data": {}})


def source_urls(jobs: list[dict[str, Any]]) -> list[str]:
    return sorted(job["source_url"] for job in jobs)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    assert "failed=0" in result.stdout, result.stdout


@pytest.mark.parametrize(
    ("results", "extra_vars", "root"),
    [
        # The upload role returned the build's URL: it wins over zuul_log_url/zuul_log_path.
        (
            returned({"zuul": {"log_url": RETURNED}}),
            {"zuul_log_url": LOG_SERVER, "zuul_log_path": "elsewhere/0000000"},
            RETURNED,
        ),
        # Nothing returned (the file as the executor creates it): the site's base URL and
        # the build's path, joined as upload-logs joins them.
        ("", {"zuul_log_url": LOG_SERVER + "/", "zuul_log_path": LOG_PATH}, FROM_LOG_PATH),
        # No results file at all (an older executor): the same.
        (None, BASE_AND_PATH, FROM_LOG_PATH),
        # Something else returned data, but no log URL.
        (returned({"zuul": {"artifacts": []}, "tox": 1}), BASE_AND_PATH, FROM_LOG_PATH),
        # A results file that is not JSON: the fallback, and the build does not fail.
        ('{"data": {"zuul":', BASE_AND_PATH, FROM_LOG_PATH),
        # The site names the URL itself.
        (
            returned({"zuul": {"log_url": RETURNED}}),
            {"submit_logs_url": "https://other.example.org/build/"},
            "https://other.example.org/build/",
        ),
    ],
    ids=["returned", "empty-file", "no-file", "no-log-url", "not-json", "submit_logs_url"],
)
def test_jobs_name_the_build_url(
    executor: Executor, results: str | None, extra_vars: dict[str, Any], root: str
) -> None:
    result = executor.run(results, extra_vars)
    assert_ok(result)
    jobs = queued_jobs(executor.gearmand.port)
    assert source_urls(jobs) == sorted(root + path for path in SELECTED)
    assert root != BASE_URL_ONLY
    for job in jobs:
        assert job["event"]["fields"]["log_url"] == job["source_url"]


def test_metadata_comes_from_the_zuul_variables_and_inventory(executor: Executor) -> None:
    result = executor.run(returned({"zuul": {"log_url": RETURNED}}), {}, zuul_success="False")
    assert_ok(result)
    jobs = queued_jobs(executor.gearmand.port)
    assert len(jobs) == len(SELECTED)
    inventory = yaml.safe_load(INVENTORY.read_text())
    zuul = inventory["all"]["vars"]["zuul"]
    first_host, host = next(iter(inventory["all"]["hosts"].items()))
    for job in jobs:
        fields = job["event"]["fields"]
        assert fields["build_uuid"] == zuul["build"]
        assert fields["build_name"] == zuul["job"]
        assert fields["build_queue"] == zuul["pipeline"]
        assert fields["build_change"] == zuul["change"]
        assert fields["build_status"] == "FAILURE"  # zuul_success=False
        assert fields["build_node"] == first_host  # from zuul.executor.inventory_file
        assert fields["node_provider"] == host["nodepool"]["provider"]


def test_a_returned_url_holding_a_template_is_not_used(executor: Executor) -> None:
    # Job content can write results.json; this playbook is trusted, so nothing read from
    # the file may be evaluated as a template.
    marker = executor.root / "templated"
    evil = "https://logs.example.org/{{ lookup('pipe', 'touch " + str(marker) + "') }}/"
    result = executor.run(returned({"zuul": {"log_url": evil}}), BASE_AND_PATH)
    assert_ok(result)
    assert not marker.exists()
    assert source_urls(queued_jobs(executor.gearmand.port)) == [FROM_LOG_PATH + p for p in SELECTED]


def test_no_url_submits_nothing_and_fails_only_when_strict(executor: Executor) -> None:
    # zuul_log_path is a fact of the upload playbook; a later playbook does not see it.
    result = executor.run("", {"zuul_log_url": LOG_SERVER})
    assert_ok(result)
    assert "returned no zuul.log_url" in result.stdout
    assert queued_jobs(executor.gearmand.port) == []

    strict = executor.run("", {"zuul_log_url": LOG_SERVER, "submit_logs_strict": True})
    assert strict.returncode != 0
    assert "failed=1" in strict.stdout


def test_unreachable_gearman_fails_the_build_only_when_strict(executor: Executor) -> None:
    closed = f"127.0.0.1:{free_port()}"
    extra: dict[str, Any] = {
        "submit_logs_gearman": [closed],
        "submit_logs_connect_timeout": 1,
        **BASE_AND_PATH,
    }
    result = executor.run("", extra)
    assert_ok(result)
    said = [line for line in result.stdout.splitlines() if "log-shipper submit: warning:" in line]
    assert said and closed in said[0], result.stdout

    strict = executor.run("", {**extra, "submit_logs_strict": True})
    assert strict.returncode != 0
    assert "failed=1" in strict.stdout


def test_missing_log_shipper_does_not_fail_the_build(executor: Executor) -> None:
    extra = {"submit_logs_command": str(executor.root / "no-such-log-shipper")}
    result = executor.run(returned({"zuul": {"log_url": RETURNED}}), extra)
    assert_ok(result)
    assert "no-such-log-shipper" in result.stdout
