"""Build log trees from the real corpus, laid out as a CI log server would have them."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.paths import CORPUS

# relative path in the build tree -> corpus file
CORPUS_TREE: dict[str, str] = {
    "job-output.txt": "zuul-jobs-fixture/job-output.txt",
    "console.html.gz": "os-loganalyze/console.html.gz",
    "github-actions.log": "bugswarm/2360239904-orig.log",
    "logs/devstacklog.txt.gz": "os-loganalyze/devstacklog.txt.gz",
    "logs/screen-q-svc.txt.gz": "os-loganalyze/screen-q-svc.txt.gz",
    "logs/screen-n-api.txt.gz": "os-loganalyze/screen-n-api.txt.gz",
    "logs/screen-c-api.txt": "os-loganalyze/screen-c-api.txt",
    "logs/syslog.txt": "os-loganalyze/syslog.txt",
    "logs/devstack@c-api.service.log.txt": "os-loganalyze/devstack@c-api.service.log.txt",
    "logs/devstack@c-vol.service.log.txt": "os-loganalyze/devstack@c-vol.service.log.txt",
    "logs/nova-api.log.gz": "os-log-merger/nova-api.log-20151113.gz",
    "logs/testrepository.subunit": "ci-log-processing/testrepository.subunit",
}


def make_tree(root: Path, layout: dict[str, str] = CORPUS_TREE) -> Path:
    for relative, source in layout.items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(CORPUS / source, target)
    return root
