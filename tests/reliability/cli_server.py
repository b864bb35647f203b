"""A fork server for CLI tests: ``zslkit`` commands in real processes without paying the imports each time.

Run as a script; it imports torch and zslkit once (no torch op runs before a fork),
then reads one JSON request per line from stdin::

    {"argv": [...], "setup": "python code run in the child first", "stdout": PATH, "stderr": PATH}

and forks a child that redirects its stdout and stderr (the real file descriptors) to
the given files, runs ``setup`` and ``zslkit.cli.main(argv)``, and exits with its code.
The server answers one JSON line: ``{"exit": code}`` or ``{"signal": number}``.
"""

import json
import os
import sys

import timm  # noqa: F401 - imported by the timm backbone when first built
import torch._dynamo  # noqa: F401 - imported by the optimizers' first step: import it once, here

import zslkit
import zslkit.bench  # noqa: F401
from zslkit.cli import build_parser, main

build_parser(), zslkit.list_components()  # import everything lazy now; plugins load here


def run_child(request: dict) -> None:
    for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        os.dup2(target, fd)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    try:
        exec(request.get("setup") or "", {"__name__": "setup"})
        code = main(request["argv"])
    except SystemExit as exit_:  # argparse errors
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # noqa: BLE001 - what the interpreter would print, for the test to see
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:
        run_child(request)
    _, status = os.waitpid(pid, 0)
    reply = {"signal": os.WTERMSIG(status)} if os.WIFSIGNALED(status) else {"exit": os.WEXITSTATUS(status)}
    print(json.dumps(reply), flush=True)
