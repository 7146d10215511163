"""Runs a command with its stdin and stdout passed through and logged byte for byte, so that the
suite can check everything the server wrote to stdout (JSON-RPC only, no key).

usage: python tee.py LOG_PREFIX -- COMMAND [ARGS...]   (writes LOG_PREFIX.in and LOG_PREFIX.out)
"""

import os
import signal
import subprocess
import sys
import threading


def main(prefix: str, argv: list[str]) -> int:
    child = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)

    def forward(signum, _frame):
        try:
            child.send_signal(signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)

    def pump_stdin() -> None:
        with open(prefix + ".in", "wb", buffering=0) as log:
            try:
                while True:
                    chunk = os.read(0, 65536)
                    if not chunk:
                        break
                    log.write(chunk)
                    child.stdin.write(chunk)
                    child.stdin.flush()
            except OSError:
                pass
            finally:
                try:
                    child.stdin.close()
                except OSError:
                    pass

    threading.Thread(target=pump_stdin, daemon=True).start()
    with open(prefix + ".out", "wb", buffering=0) as log:
        while True:
            chunk = os.read(child.stdout.fileno(), 65536)
            if not chunk:
                break
            log.write(chunk)
            try:
                os.write(1, chunk)
            except OSError:
                break
    return child.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[3:]))
