"""A worker of a shared study whose candidates are cheap: ``python study_worker.py URL NAME LOG [--hang K]``.

Each evaluation appends ``<pid> <candidate>`` to LOG. With ``--hang K`` the worker writes ``LOG.hang`` when it
starts candidate K and then sleeps, so the test can kill it mid-trial.
"""

import argparse
import os
import time
from pathlib import Path

from hwqnn.distributed import SharedStudy, StudyOptions

CANDIDATES = [{"name": f"point-{i}"} for i in range(6)]
OPTIONS = StudyOptions(heartbeat_s=1, grace_s=3, max_retry=2, poll_s=0.3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("name")
    parser.add_argument("log")
    parser.add_argument("--hang", type=int, default=None)
    parser.add_argument("--seconds", type=float, default=0.4)
    args = parser.parse_args()
    study = SharedStudy.open(args.url, args.name, CANDIDATES, {"seed": 0}, OPTIONS)

    def evaluate(index, candidate):
        if index == args.hang:
            Path(args.log + ".hang").write_text(str(os.getpid()))
            time.sleep(600)
        time.sleep(args.seconds)
        with open(args.log, "a") as fh:
            fh.write(f"{os.getpid()} {index}\n")
        return float(index), {"name": candidate["name"], "pid": os.getpid()}

    study.work(evaluate)


if __name__ == "__main__":
    main()
