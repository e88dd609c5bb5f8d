"""The CI examples of config/ci/ (GitHub Actions, Jenkins): valid files, and their shell
run as the CI system runs it; the hook's push-log jobs are read back from a real gearmand.
(The Zuul role has its own tests, tests/test_zuul_role.py.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gearmand import Gearmand, queued_jobs
from tests.paths import REPO, write_log_shipper
from tests.test_submit_cli import clean_environment

GITHUB = REPO / "config" / "ci" / "github-actions" / "submit-logs.yml"
JENKINS = REPO / "config" / "ci" / "jenkins" / "Jenkinsfile.post"

# How GitHub runs a step's script on Linux (its workflow syntax reference, "shell"):
# "{0}" is the script file. A step with no shell is run with bash -e.
GITHUB_SHELLS = {
    "bash": ["bash", "--noprofile", "--norc", "-eo", "pipefail", "{0}"],
    None: ["bash", "-e", "{0}"],
    "sh": ["sh", "-e", "{0}"],
}
# Jenkins' `sh` step runs its script with `sh -xe`.
JENKINS_SHELL = ["sh", "-xe", "{0}"]
# A Jenkinsfile is Groovy: its compiler checks the syntax (Maven Central, through mvn).
GROOVY = ("org.apache.groovy", "groovy", "5.0.8")
GROOVY_CACHE = Path.home() / ".cache" / "ci-log-indexer" / "groovy"

# The contexts of the two legs of the example's matrix, as GitHub would give them.
LEGS = [
    {
        "github.job": "tests",
        "github.repository": "example/webapp",
        "github.run_id": "9876543210",
        "github.run_attempt": "1",
        "matrix.python": python,
        "strategy.job-index": str(index),
        "job.status": "failure",
    }
    for index, python in enumerate(["3.11", "3.12"])
]
# The variables GitHub sets for a pull request's job (those metadata.py reads).
GITHUB_ENV = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_JOB": "tests",
    "GITHUB_REPOSITORY": "example/webapp",
    "GITHUB_RUN_ID": "9876543210",
    "GITHUB_RUN_ATTEMPT": "1",
    "GITHUB_SERVER_URL": "https://github.com",
    "GITHUB_EVENT_NAME": "pull_request",
    "GITHUB_REF": "refs/pull/318/merge",
    "GITHUB_REF_NAME": "318/merge",
    "GITHUB_BASE_REF": "main",
    "GITHUB_SHA": "3f6c2a8e1d9b4f7a0c5e2d8b1f4a7c0e3d6b9f2a",
    "GITHUB_WORKFLOW": "tests",
    "RUNNER_NAME": "runner-17",
}


def workflow() -> dict[Any, Any]:
    data = yaml.safe_load(GITHUB.read_text())
    assert isinstance(data, dict)
    return data


def steps() -> dict[str, dict[str, Any]]:
    job = workflow()["jobs"]["tests"]
    return {step.get("name", step.get("uses")): step for step in job["steps"]}


def substitute(text: str, context: dict[str, str]) -> str:
    """GitHub's ${{ name }} expressions, for the plain names of `context` only."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in context, f"the test knows no value for ${{{{ {name} }}}}"
        return context[name]

    return re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", value, text)


def run_script(
    script: str, shell: list[str], cwd: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    path = cwd / ".step.sh"
    path.write_text(script)
    argv = [str(path) if part == "{0}" else part for part in shell]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def write_run_tests(cwd: Path, status: int) -> None:
    script = cwd / "run-tests.sh"
    script.write_text(f"#!/bin/sh\necho 'Ran 12 tests, {status} failed'\nexit {status}\n")
    script.chmod(0o755)


# --- GitHub Actions ----------------------------------------------------------------------


def test_github_workflow_is_a_workflow() -> None:
    data = workflow()
    assert data[True] == ["push", "pull_request"]  # YAML 1.1 reads the key `on` as true
    assert set(steps()) == {
        "actions/checkout@v4",
        "Run the tests",
        "Publish the logs",
        "Submit the logs to the log indexer",
    }


def test_every_github_step_runs_with_pipefail() -> None:
    data = workflow()
    default = data.get("defaults", {}).get("run", {}).get("shell")
    job_default = data["jobs"]["tests"].get("defaults", {}).get("run", {}).get("shell", default)
    for name, step in steps().items():
        if "run" in step:
            shell = step.get("shell", job_default)
            assert "pipefail" in GITHUB_SHELLS[shell], f"{name}: runs with {shell}"


@pytest.mark.parametrize("shell", ["bash", None], ids=["shell-bash", "no-shell-given"])
def test_failing_tests_fail_the_github_step(tmp_path: Path, shell: str | None) -> None:
    script = steps()["Run the tests"]["run"]
    write_run_tests(tmp_path, 1)
    failed = run_script(script, GITHUB_SHELLS[shell], tmp_path, dict(os.environ))
    assert failed.returncode != 0
    assert "Ran 12 tests, 1 failed" in failed.stdout  # tee still shows it
    assert (tmp_path / "logs" / "job-output.txt").read_text() == "Ran 12 tests, 1 failed\n"

    write_run_tests(tmp_path, 0)
    passed = run_script(script, GITHUB_SHELLS[shell], tmp_path, dict(os.environ))
    assert passed.returncode == 0, passed.stderr

    # The check can tell: the example's old step passed with failing tests.
    write_run_tests(tmp_path, 1)
    old = "mkdir -p logs && ./run-tests.sh 2>&1 | tee logs/job-output.txt\n"
    assert run_script(old, GITHUB_SHELLS[None], tmp_path, dict(os.environ)).returncode == 0


def test_matrix_legs_get_their_own_job_name_and_log_path() -> None:
    env = workflow()["jobs"]["tests"]["env"]
    names = {substitute(env["LOG_JOB_NAME"], leg) for leg in LEGS}
    paths = {substitute(env["LOG_PATH"], leg) for leg in LEGS}
    assert names == {"tests (3.11)", "tests (3.12)"}
    assert paths == {
        "example/webapp/9876543210/1/tests-0",
        "example/webapp/9876543210/1/tests-1",
    }
    # The published logs are where the submitted URL says.
    assert "${LOG_PATH}" in steps()["Publish the logs"]["run"]
    submit = steps()["Submit the logs to the log indexer"]["run"]
    assert '--log-url "${LOG_SERVER_URL}/${LOG_PATH}/"' in submit
    assert '--job-name "${LOG_JOB_NAME}"' in submit


def test_github_submit_step_queues_the_logs_in_zuul_words(
    tmp_path: Path, gearmand: Gearmand
) -> None:
    step = steps()["Submit the logs to the log indexer"]
    job_env = workflow()["jobs"]["tests"]["env"]
    leg = LEGS[0]
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "job-output.txt").write_text("Ran 12 tests, 1 failed\n")
    env = clean_environment()
    env.update(GITHUB_ENV)
    env.update({name: substitute(value, leg) for name, value in job_env.items()})
    env["LOG_INDEX_GEARMAN"] = gearmand.address
    env["PATH"] = f"{write_log_shipper(tmp_path / 'bin').parent}:{env['PATH']}"

    result = run_script(substitute(step["run"], leg), GITHUB_SHELLS["bash"], tmp_path, env)

    assert result.returncode == 0, result.stderr
    [job] = queued_jobs(gearmand.port)
    url = "https://logs.example.org/github/example/webapp/9876543210/1/tests-0/job-output.txt"
    assert job["source_url"] == url
    fields = job["event"]["fields"]
    assert fields["build_status"] == "FAILURE"  # job.status "failure"
    assert fields["build_name"] == "tests (3.11)"
    assert fields["project"] == "example/webapp"
    assert fields["build_change"] == "318"


# --- Jenkins ------------------------------------------------------------------------------


def jenkins_sh_script() -> str:
    """The post section's `sh '''...'''` script, as Groovy gives it to the shell."""
    [body] = re.findall(r"sh '''\n(.*?)'''", JENKINS.read_text(), flags=re.DOTALL)
    return body.replace("\\\\", "\\")  # the only escape used in it


def test_jenkins_pipeline_is_not_hard_coded() -> None:
    script = jenkins_sh_script()
    assert '--pipeline "${LOG_INDEX_PIPELINE}"' in script
    assert "--pipeline post" not in JENKINS.read_text()


@pytest.mark.parametrize(
    ("pipeline", "result", "status"),
    [("check", "UNSTABLE", "FAILURE"), ("periodic", "NOT_BUILT", "SKIPPED")],
)
def test_jenkins_post_step_queues_the_logs_in_zuul_words(
    tmp_path: Path, gearmand: Gearmand, pipeline: str, result: str, status: str
) -> None:
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "job-output.txt").write_text("Ran 12 tests, 1 failed\n")
    build_url = "https://ci.example.com/job/webapp/job/PR-318/2/"
    env = clean_environment()
    env.update(
        JOB_NAME="webapp/PR-318",
        BUILD_URL=build_url,
        BUILD_NUMBER="2",
        CHANGE_ID="318",
        CHANGE_TARGET="main",
        NODE_NAME="built-in",
        LOG_INDEX_GEARMAN=gearmand.address,
        LOG_INDEX_PIPELINE=pipeline,
        LOG_INDEX_STATUS=result,
        PATH=f"{write_log_shipper(tmp_path / 'bin').parent}:{os.environ['PATH']}",
    )

    done = run_script(jenkins_sh_script(), JENKINS_SHELL, tmp_path, env)

    assert done.returncode == 0, done.stderr
    [job] = queued_jobs(gearmand.port)
    assert job["source_url"] == build_url + "artifact/logs/job-output.txt"
    fields = job["event"]["fields"]
    assert (fields["build_queue"], fields["build_status"]) == (pipeline, status)
    assert fields["build_name"] == "webapp/PR-318"
    assert fields["build_change"] == "318"


def groovy_jar() -> Path:
    group, artifact, version = GROOVY
    jar = GROOVY_CACHE / f"{artifact}-{version}.jar"
    if not jar.exists():
        assert shutil.which("mvn"), "mvn is missing (apt-get install maven)"
        GROOVY_CACHE.mkdir(parents=True, exist_ok=True)
        fetched = subprocess.run(
            [
                *("mvn", "-q", "-B", "dependency:copy"),
                f"-Dartifact={group}:{artifact}:{version}",
                f"-DoutputDirectory={GROOVY_CACHE}",
            ],
            cwd=GROOVY_CACHE,  # never a stray pom.xml
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert fetched.returncode == 0 and jar.exists(), fetched.stdout[-2000:]
    return jar


def test_jenkinsfile_is_valid_groovy(tmp_path: Path) -> None:
    java = shutil.which("java")
    assert java, "java is missing (apt-get install default-jre-headless)"
    source = tmp_path / "Jenkinsfile.groovy"
    shutil.copyfile(JENKINS, source)
    compiled = subprocess.run(
        [
            *(java, "-cp", str(groovy_jar()), "org.codehaus.groovy.tools.FileSystemCompiler"),
            *("-d", str(tmp_path / "classes"), str(source)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr
