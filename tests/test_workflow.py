"""The GitHub workflow cannot run here, so these tests hold it to what can be checked offline: GitHub's schema for
workflows (check-jsonschema), zizmor's security audits, and the project's own commands as the README gives them,
so that CI gates on the same expectations a user's `./dev run` applies and cannot drift from the project.

Both tools come with the dev extras (`./dev test` installs them) and run next to this interpreter; neither
reaches the network (zizmor --offline skips the audits that ask GitHub's API)."""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

from ruamel.yaml import YAML

from support import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
WORKFLOW = ROOT / ".github" / "workflows" / "interop.yml"
README = (ROOT / "README.md").read_text()
TOOL_TIMEOUT_S = 60
# A full commit SHA and the release it is, e.g. actions/checkout@<40 hex> # v4.3.1
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+\.\d+\.\d+$")


def tool(name: str) -> str:
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{name} is not installed next to {sys.executable}: pip install -e '.[dev]' (./dev does)"
    return str(path)


def run_tool(*argv: str) -> subprocess.CompletedProcess:
    # No token in reach: the checks must give the same answer on a laptop, here and in CI.
    env = {k: v for k, v in os.environ.items() if k not in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN")}
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TOOL_TIMEOUT_S)


def workflow() -> dict:
    return YAML(typ="safe").load(WORKFLOW.read_text())


def the_step(jobs: dict, program: str, *subcommand: str) -> tuple[str, dict, list[str]]:
    """(job id, step, argv) of the one run step with a line that calls `program subcommand...` (by any path)."""
    found = []
    for job_id, job in jobs.items():
        for step in job.get("steps", []):
            for line in step.get("run", "").splitlines():
                argv = shlex.split(line)
                if argv and Path(argv[0]).name == Path(program).name and argv[1:1 + len(subcommand)] == [*subcommand]:
                    found.append((job_id, step, argv))
    assert len(found) == 1, f"{WORKFLOW.name}: {len(found)} steps run `{program} {' '.join(subcommand)}`, not one"
    return found[0]


def one(items: list, what: str):
    assert len(items) == 1, f"{WORKFLOW.name}: {len(items)} {what}, not one"
    return items[0]


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def env_of(job: dict, step: dict) -> dict:
    return {**job.get("env", {}), **step.get("env", {})}


def single_command(step: dict) -> bool:
    """The step's script is one command, so its exit code is the step's (no `|| true`, no second command)."""
    script = step["run"].strip()
    return "\n" not in script and not re.search(r"[|;&]", script)


def describe(findings: list[dict]) -> str:
    lines = []
    for finding in findings:
        where = [f"line {loc['concrete']['location']['start_point']['row'] + 1}: {loc['symbolic'].get('annotation')}"
                 for loc in finding.get("locations", [])]
        lines.append(f"{finding['ident']} ({finding['determinations']['severity']}): {finding['desc']}; "
                     + "; ".join(where))
    return "\n".join(lines)


def test_the_workflows_are_valid_github_workflows():
    assert WORKFLOW in WORKFLOWS, WORKFLOWS
    result = run_tool(tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing_even_as_an_auditor():
    # --no-config: a zizmor.yml cannot quietly waive a finding; the auditor persona shows the least severe ones too.
    result = run_tool(tool("zizmor"), "--offline", "--no-config", "--persona=auditor", "--format=json",
                      *map(str, WORKFLOWS))
    assert result.stdout.strip(), result.stderr
    findings = json.loads(result.stdout)
    assert not findings, describe(findings)
    assert result.returncode == 0, result.stderr


def test_every_action_is_pinned_to_a_commit_and_names_its_release():
    """zizmor wants a hash; the `# vX.Y.Z` beside it says which release it is, for a reader and for updates."""
    uses = [line.split("uses:", 1)[1].strip() for path in WORKFLOWS for line in path.read_text().splitlines()
            if line.strip().lstrip("- ").startswith("uses:")]
    assert uses, "no action in the workflow?"
    assert [u for u in uses if not PINNED.match(u)] == []


def test_the_shards_run_the_readmes_matrix_command_against_the_shipped_expectations():
    assert "./dev run" in README and "--shard i/n" in README
    jobs = workflow()["jobs"]
    job_id, step, argv = the_step(jobs, "./dev", "run")
    job = jobs[job_id]
    assert argv[:2] == ["./dev", "run"], argv
    # The default expectations are the gate: no --expect that swaps them out or turns them off.
    assert not any(arg.startswith("--expect") for arg in argv), argv
    # A red step is the verdict: nothing may swallow its exit code.
    assert single_command(step), step["run"]
    assert not job.get("continue-on-error") and not step.get("continue-on-error"), job_id

    shard = re.fullmatch(r"\$(\w+)/(\d+)", option(argv, "--shard") or "")
    assert shard, f"--shard must be $VAR/n: {argv}"
    variable, count = shard.group(1), int(shard.group(2))
    matrix_key = re.fullmatch(r"\$\{\{ *matrix\.(\w+) *\}\}", env_of(job, step)[variable]).group(1)
    assert job["strategy"]["matrix"][matrix_key] == list(range(1, count + 1))
    assert job["strategy"].get("fail-fast") is False, "one red shard must not cancel the others' evidence"

    # Each shard's reports are uploaded whatever its verdict.
    reports = option(argv, "--reports-dir").replace(f"${variable}", f"${{{{ matrix.{matrix_key} }}}}")
    upload = one([s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")],
                 f"uploads in job {job_id}")
    assert upload["with"]["path"] == reports and upload.get("if") == "always()", upload


def test_the_merge_joins_every_shard_uploads_the_report_and_carries_the_shards_verdict(tmp_path):
    assert re.search(r"`overlay-interop report merge DIR1 DIR2 \.\.\. --into OUT`", README)
    jobs = workflow()["jobs"]
    shard_id, _, _ = the_step(jobs, "./dev", "run")
    job_id, merge, argv = the_step(jobs, "overlay-interop", "report", "merge")
    job = jobs[job_id]
    assert shard_id in ([job["needs"]] if isinstance(job["needs"], str) else job["needs"])
    assert "always()" in job.get("if", ""), "the report is merged even when a shard is red"

    download = one([s for s in job["steps"] if s.get("uses", "").startswith("actions/download-artifact@")],
                   f"downloads in job {job_id}")
    shard_upload = one([s for s in jobs[shard_id]["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")],
                       f"uploads in job {shard_id}")
    assert fnmatch(re.sub(r"\$\{\{[^}]*\}\}", "1", shard_upload["with"]["name"]), download["with"]["pattern"])
    into = option(argv, "--into")
    assert argv[3:] == [f"{download['with']['path']}/*", "--into", into], argv

    steps = job["steps"]
    after = steps[steps.index(merge) + 1:]
    report_upload = one([s for s in after if s.get("uses", "").startswith("actions/upload-artifact@")],
                        "uploads after the merge")
    assert report_upload["with"]["path"] == into and report_upload.get("if") == "always()", report_upload

    # The step that fails the job when a shard failed: run its script as the runner would.
    shard_result = f"${{{{ needs.{shard_id}.result }}}}"
    verdict = one([s for s in after if shard_result in env_of(job, s).values()],
                  f"steps after the merge that read {shard_result}")
    assert verdict.get("if") == "always()", verdict
    [variable] = [k for k, v in env_of(job, verdict).items() if v == shard_result]
    for result, code in (("success", 0), ("failure", 1), ("cancelled", 1)):
        ran = subprocess.run(["bash", "-e", "-c", verdict["run"]], env={"PATH": os.environ["PATH"], variable: result},
                             cwd=tmp_path, capture_output=True, text=True, timeout=10)
        assert (ran.returncode != 0) == bool(code), (result, ran.returncode, ran.stdout)


def test_a_job_runs_the_projects_tests_without_the_default_matrix():
    """The shard jobs run the default matrix; the tests job runs the rest of `./dev test` on GitHub's runner."""
    assert "./dev test" in README
    dev = (ROOT / "dev").read_text()
    assert re.search(r"^\s*run\)", dev, re.M) and re.search(r"^\s*test\)", dev, re.M)
    jobs = workflow()["jobs"]
    job_id, step, argv = the_step(jobs, "./dev", "test")
    assert jobs[job_id]["runs-on"] == "ubuntu-24.04"
    assert single_command(step), step["run"]
    left_out = [argv[i + 1] for i, arg in enumerate(argv) if arg in ("--deselect", "--ignore")]
    assert left_out == ["tests/test_default_matrix.py"], argv
    assert all((ROOT / path).is_file() for path in left_out), left_out
