#!/usr/bin/python3
"""Invalid configuration is reported once: as a readable list when stderr is a terminal, else as one
`invalid_configuration` JSON line (where log collectors look). Either way the process exits 2.

Usage: config_errors_once.py BINARY (the connector or the publisher)
"""
import json
import os
import pty
import subprocess
import sys
import tempfile

BAD = ["--batch-size", "0", "--env-file", "/dev/null/none"]
ENV = {"PATH": "/usr/bin:/bin", "STREAM_KEY": "s"}  # REDIS_URL and CONSUMER_GROUP_NAME missing


def on_terminal(binary):
    """stdout and stderr on one pseudo-terminal, as in an interactive shell."""
    primary, secondary = pty.openpty()
    with tempfile.TemporaryDirectory() as cwd:
        process = subprocess.Popen([binary, *BAD], stdout=secondary, stderr=secondary, env=ENV, cwd=cwd)
        os.close(secondary)
        output = b""
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
        os.close(primary)
        return process.wait(timeout=30), output.decode()


def in_pipes(binary):
    with tempfile.TemporaryDirectory() as cwd:
        result = subprocess.run([binary, *BAD], capture_output=True, text=True, env=ENV, cwd=cwd, timeout=30)
    return result.returncode, result.stdout, result.stderr


def main():
    binary = os.path.abspath(sys.argv[1])
    problems = []
    status, output = on_terminal(binary)
    if status != 2:
        problems.append(f"on a terminal: exit status {status}, not 2")
    if output.count("Invalid configuration:") != 1 or "BATCH_SIZE" not in output or "REDIS_URL" not in output:
        problems.append(f"on a terminal: not one readable list naming BATCH_SIZE and REDIS_URL:\n{output}")
    if '"msg":"invalid_configuration"' in output:
        problems.append(f"on a terminal: the JSON line repeats the list:\n{output}")

    status, stdout, stderr = in_pipes(binary)
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    if status != 2:
        problems.append(f"in pipes: exit status {status}, not 2")
    if len(lines) != 1 or lines[0].get("msg") != "invalid_configuration" or len(lines[0].get("problems", [])) < 3:
        problems.append(f"in pipes: not one invalid_configuration line with every problem:\n{stdout}")
    if "Invalid configuration:" in stderr:
        problems.append(f"in pipes: the list is printed again on stderr:\n{stderr}")

    for problem in problems:
        print("FAIL:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
