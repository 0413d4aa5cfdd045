#!/usr/bin/python3
"""Runs the README's recipes as a reader would paste them.

Convention: every ```sh block in README.md is preceded by a marker line,
  <!-- recipe: run -->             this test runs it, or
  <!-- recipe: skip (reason) -->   it cannot run here (the reason names what proves it instead).
A ```sh block without a marker fails the test, so a new recipe cannot go untested by accident.

Each run-block runs with `bash -euo pipefail` in a fresh directory whose build/release is the build under
test, inside new PID and network namespaces: fixed ports such as 6379 cannot collide with anything,
and every process the recipe leaves behind dies with it. `cmake --preset release` is the build under
test (configured already) and `cmake --build --preset release ...` builds it.

Usage (as root): run_readme_recipes.py README.md BUILD_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

MARKER = re.compile(r"^<!-- recipe: (run|skip \(.+\)) -->$")
SKIP_STATUS = 77  # CTest's SKIP_RETURN_CODE for this test
TIMEOUT_S = 180


def recipes(readme):
    """(line number, marker, body) for every ```sh block."""
    lines = readme.read_text().splitlines()
    found = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```sh":
            start = i
            body = []
            i += 1
            while lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            marker = MARKER.match(lines[start - 1]) if start > 0 else None
            found.append((start + 1, marker.group(1) if marker else None, "\n".join(body) + "\n"))
        i += 1
    return found


def cmake_wrapper(bin_dir, build_dir):
    """`cmake --build --preset release ARGS` builds the build under test; anything else is real cmake."""
    real = shutil.which("cmake")
    wrapper = bin_dir / "cmake"
    wrapper.write_text(
        "#!/bin/sh\n"
        'if [ "$#" = 2 ] && [ "$1" = --preset ] && [ "$2" = release ]; then exit 0; fi  # configured already\n'
        f'if [ "$1" = --build ] && [ "$2" = --preset ] && [ "$3" = release ]; then\n'
        f'  shift 3; exec "{real}" --build "{build_dir}" "$@"\n'
        "fi\n"
        f'exec "{real}" "$@"\n')
    wrapper.chmod(0o755)


def run(line, body, build_dir):
    with tempfile.TemporaryDirectory(prefix="readme-recipe.") as temp:
        work = Path(temp) / "work"
        (work / "build").mkdir(parents=True)
        (work / "build" / "release").symlink_to(build_dir)
        bin_dir = Path(temp) / "bin"
        bin_dir.mkdir()
        cmake_wrapper(bin_dir, build_dir)
        (Path(temp) / "recipe.sh").write_text(body)
        # No --mount-proc: it needs / to be a mount point, which it is not in a chroot; the recipes do not
        # look at /proc, and every process in the PID namespace dies with its first one all the same.
        command = ["unshare", "--pid", "--fork", "--kill-child", "--net", "bash", "-c",
                   'ip link set lo up && cd "$1" && exec bash -euo pipefail "$2"', "recipe",
                   str(work), str(Path(temp) / "recipe.sh")]
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
        # LeakSanitizer reads /proc/<pid>/task at exit; in the new PID namespace (without its own /proc)
        # that pid is someone else's, and LSan fails the recipe. Leaks are checked by every other test.
        if "ASAN_OPTIONS" in env:
            env["ASAN_OPTIONS"] += ":detect_leaks=0"
        try:
            result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired as error:
            return f"README.md:{line}: did not finish in {TIMEOUT_S} s\n{error.stdout or ''}{error.stderr or ''}"
        if result.returncode != 0:
            return (f"README.md:{line}: exit status {result.returncode}\n--- recipe\n{body}--- output\n"
                    f"{result.stdout}{result.stderr}")
        print(f"README.md:{line}: ok")
        return None


def main():
    readme, build_dir = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
    found = recipes(readme)
    unmarked = [line for line, marker, _ in found if marker is None]
    if unmarked:
        print("FAIL: ```sh blocks without a <!-- recipe: run --> or <!-- recipe: skip (reason) --> line "
              f"before them, at README.md lines {unmarked}")
        return 1
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        print("needs root, unshare and ip (iproute2) for its PID and network namespaces: skipped")
        return SKIP_STATUS
    failures = [f for f in (run(line, body, build_dir) for line, marker, body in found if marker == "run") if f]
    for failure in failures:
        print("FAIL:", failure)
    ran = sum(1 for _, marker, _ in found if marker == "run")
    print(f"{ran} recipes run, {len(found) - ran} skipped with a reason, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
