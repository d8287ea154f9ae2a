"""A shared study: a fixed list of candidates that any number of workers, on any machines, evaluate once each.

It is an optuna study in RDB storage (SQLite for one machine, PostgreSQL for many) used as a durable work
queue. The worker that creates the study enqueues one trial per candidate and records the settings and the
candidate list last; workers that join wait for that record and refuse to work when their settings differ.
Every worker then takes waiting trials until each candidate has a result. A worker that dies stops sending
heartbeats: once ``grace_s`` has passed, any live worker fails its trial and optuna's
``RetryFailedTrialCallback`` enqueues it again, so the candidate is retried, not lost.

Nothing here knows about sweeps: a candidate is a JSON dict and a result a JSON dict. The Pareto sweep uses
it for its points (``hwqnn pareto --storage``); an evolutionary search (HQNAS) can enqueue each generation's
candidates the same way and read the results back.
"""

from __future__ import annotations

import contextlib
import logging
import re
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._errors import StudyError

log = logging.getLogger(__name__)
CANDIDATE = "candidate"
RESULT = "result"
ERROR = "error"
SETTINGS = "settings"
CANDIDATES = "candidates"


@dataclass(frozen=True)
class StudyOptions:
    """Timings of the shared queue. A trial is declared dead ``grace_s`` after its last heartbeat."""

    heartbeat_s: int = 10
    grace_s: int = 60
    max_retry: int = 3
    poll_s: float = 2.0
    join_timeout_s: float = 600.0


def default_storage_url(folder: str | Path) -> str:
    """SQLite in ``folder``: enough for workers on one machine."""
    return f"sqlite:///{Path(folder).resolve() / 'study.db'}"


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _callback_keyword(optuna) -> str:
    """RDBStorage's keyword for the stale-trial callback: renamed in optuna 5 (``failed_trial_callback`` in 4)."""
    import inspect

    parameters = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    return "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in parameters else "failed_trial_callback"


def open_storage(url: str, options: StudyOptions = StudyOptions()):
    """An optuna RDBStorage with heartbeats and retries of dead workers' trials, or one clear StudyError."""
    try:
        import optuna
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:
        raise StudyError("shared studies need optuna: pip install 'optuna>=4.0,<6'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    from sqlalchemy.exc import IntegrityError

    for attempt in range(5):
        try:
            with _quiet_optuna():
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine, heartbeat_interval=options.heartbeat_s, grace_period=options.grace_s,
                    **{_callback_keyword(optuna): _retry_callback(options.max_retry)})
        except IntegrityError:  # two workers created the schema at once; the other one's tables are there now
            time.sleep(0.2 * (attempt + 1))
        except (SQLAlchemyError, ImportError, ValueError) as exc:
            _raise_unreachable(url, exc)
    raise StudyError(f"cannot create the study tables in {redact(url)}: other workers keep creating them; retry")


@contextlib.contextmanager
def _quiet_optuna():
    """Heartbeats are "experimental" in optuna since 2.9 and their retry callback was renamed in 4.9: we
    rely on both on purpose, so their warnings would only push the one line a user needs off the screen."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*RetryFailedTrialCallback.*")
        yield


def _retry_callback(max_retry: int):
    """optuna's callback that re-enqueues a dead worker's trial (its name since 4.9, else the older one)."""
    import optuna

    callback = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)
    callback = callback or optuna.storages.RetryFailedTrialCallback
    return callback(max_retry=max_retry)


def _raise_unreachable(url: str, exc: Exception):
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    raise StudyError(f"cannot reach the study storage {redact(url)}: {reason}; check the URL (e.g. "
                     f"sqlite:///path/study.db or postgresql://user:pass@host/db), the server and its driver") from None


class SharedStudy:
    """The candidates of one study and the calls a worker makes on it."""

    def __init__(self, study, candidates: Sequence[Mapping], options: StudyOptions):
        self.study, self.candidates, self.options = study, [dict(c) for c in candidates], options

    # --- creating or joining ------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, name: str, candidates: Sequence[Mapping], settings: Mapping,
             options: StudyOptions = StudyOptions()) -> SharedStudy:
        """Create the study (and its queue) or join it; a joining worker's ``settings`` must match."""
        import optuna

        storage = open_storage(url, options)
        try:
            optuna.create_study(storage=storage, study_name=name, direction="maximize")
            created = True
        except optuna.exceptions.DuplicatedStudyError:
            created = False
        study = optuna.load_study(study_name=name, storage=storage)
        settings = _plain(settings)
        if created:
            for index in range(len(candidates)):
                study.enqueue_trial({}, user_attrs={CANDIDATE: index})
            study.set_user_attr(SETTINGS, settings)
            study.set_user_attr(CANDIDATES, _plain(list(candidates)))  # last: the queue is complete
            log.info("created study %r in %s with %d candidates", name, redact(url), len(candidates))
        else:
            _check_same(name, _wait_for_queue(study, options), settings, _plain(list(candidates)))
            log.info("joined study %r in %s", name, redact(url))
        return cls(study, candidates, options)

    # --- working ------------------------------------------------------------------------------
    def work(self, evaluate: Callable[[int, dict], tuple[float, dict]]) -> int:
        """Evaluate waiting candidates until every one has a result; returns how many this worker ran.

        ``evaluate(index, candidate)`` returns (objective value, JSON-able result). An exception in it fails
        the trial without a retry (it would fail again) and propagates.
        """
        import optuna

        done = 0

        def objective(trial) -> float:
            nonlocal done
            index = trial.user_attrs.get(CANDIDATE)
            if index is None or self._completed(index):
                raise optuna.TrialPruned()  # the queue was empty when this trial was asked for, or a duplicate
            try:
                value, result = evaluate(index, self.candidates[index])
            except BaseException as exc:
                trial.set_user_attr(ERROR, f"{type(exc).__name__}: {exc}")
                raise
            trial.set_user_attr(RESULT, result)
            done += 1
            return float(value)

        while True:
            with _quiet_optuna():
                optuna.storages.fail_stale_trials(self.study)
            pending = self.pending()
            if not pending:
                return done
            if self._trials(optuna.trial.TrialState.WAITING):
                self.study.optimize(objective, n_trials=1, catch=())
            else:
                time.sleep(self.options.poll_s)  # others are running the rest; wait to retry theirs if they die

    # --- reading ------------------------------------------------------------------------------
    def _trials(self, *states):
        return self.study.get_trials(deepcopy=False, states=states or None)

    def _completed(self, index: int) -> bool:
        import optuna

        return any(t.user_attrs.get(CANDIDATE) == index for t in self._trials(optuna.trial.TrialState.COMPLETE))

    def evaluations(self) -> dict[int, int]:
        """How many completed evaluations each candidate has (exactly one each, once the study is done)."""
        import optuna

        counts = dict.fromkeys(range(len(self.candidates)), 0)
        for trial in self._trials(optuna.trial.TrialState.COMPLETE):
            if trial.user_attrs.get(CANDIDATE) is not None:
                counts[trial.user_attrs[CANDIDATE]] += 1
        return counts

    def pending(self) -> list[int]:
        """Candidates without a result that are waiting, running, or failed fewer times than allowed."""
        from optuna.trial import TrialState

        pending = []
        for index in range(len(self.candidates)):
            mine = [t for t in self._trials() if t.user_attrs.get(CANDIDATE) == index]
            if any(t.state == TrialState.COMPLETE for t in mine):
                continue
            live = any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in mine)
            failed = [t for t in mine if t.state == TrialState.FAIL]
            given_up = any(ERROR in t.user_attrs for t in failed) or len(failed) > self.options.max_retry
            if live or not given_up:
                pending.append(index)
        return pending

    def results(self) -> dict[int, dict]:
        """The result of each candidate that has one (the first completed trial's)."""
        from optuna.trial import TrialState

        out: dict[int, dict] = {}
        for trial in sorted(self._trials(TrialState.COMPLETE), key=lambda t: t.number):
            index = trial.user_attrs.get(CANDIDATE)
            if index is not None and index not in out:
                out[index] = trial.user_attrs[RESULT]
        return out

    def failures(self) -> dict[int, str]:
        """Candidates without a result and why (the error, or how often their worker died)."""
        from optuna.trial import TrialState

        results, out = self.results(), {}
        for trial in self._trials(TrialState.FAIL):
            index = trial.user_attrs.get(CANDIDATE)
            if index is not None and index not in results:
                out[index] = trial.user_attrs.get(ERROR) or "its worker died on every try"
        return out


def _plain(value):
    """JSON-normal form (tuples as lists), so settings compare equal after a round trip through the storage."""
    import json

    return json.loads(json.dumps(value, default=str))


def _wait_for_queue(study, options: StudyOptions) -> dict:
    deadline = time.monotonic() + options.join_timeout_s
    while CANDIDATES not in study.user_attrs:
        if time.monotonic() > deadline:
            raise StudyError(f"study {study.study_name!r} exists but its creator never finished enqueuing its "
                             f"candidates; delete it (optuna delete-study) and start again")
        time.sleep(min(options.poll_s, 0.5))
    return study.user_attrs


def _check_same(name: str, attrs: Mapping, settings: dict, candidates: list) -> None:
    stored = attrs[SETTINGS]
    for key in sorted(set(stored) | set(settings)):
        if stored.get(key) != settings.get(key):
            raise StudyError(f"this worker disagrees with study {name!r} on {key}: it has {settings.get(key)!r}, the "
                             f"study was created with {stored.get(key)!r}; start every worker with the same "
                             f"arguments (or use another --study-name)")
    if attrs[CANDIDATES] != candidates:
        raise StudyError(f"this worker's candidates differ from those of study {name!r}; start every worker "
                         f"with the same arguments (or use another --study-name)")


__all__ = ["SharedStudy", "StudyOptions", "open_storage", "default_storage_url", "redact"]
