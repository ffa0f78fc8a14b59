"""The ``yai-spool run`` main loop: open spools, run one flusher per spool, obey systemd.

Owns the lifecycle of every spool the daemon drains: discovery (``discovery``), one
``Spool`` + ``ThreadFlusher`` + PutLogs client per spool file, reloads, the drain at stop, and
what systemd is told (``notify``).

Threads: the main thread runs the loop and is the only one that opens, replaces or closes
spools and flushers; the observer thread only calls ``ThreadFlusher.wake()`` on known spools
and asks the loop to rescan; flusher threads ship; the metrics thread reads snapshots under
``_lock``.

Invariants:

- Never two drainers of one spool: a flusher ships only while it holds the spool's flusher
  lock (``flock`` on ``<spool>.flusher.lock``, see ``yai_spool.spool``), which excludes other
  daemons and in-process ``SpoolHandler`` flushers alike. When a flusher is replaced (reload
  with a new destination, crash), the new one uses a *new* ``Spool`` instance, so it cannot
  inherit the old instance's lock while the old thread may still finish one request; the old
  ``Spool`` is closed only after its thread has ended.
- ``READY=1`` is sent after the configuration is valid, credentials are readable and every
  spool found was opened (or its failure logged); ``STATUS=`` every ``status_interval``;
  ``WATCHDOG=1`` every half ``WatchdogSec`` *from the main loop only*, so a wedged loop (a spool
  open stuck on a lock, a hung reload) stops pinging and systemd restarts us.
- SIGTERM/SIGINT: ``STOPPING=1``, then all flushers drain *in parallel* until one shared
  deadline (``drain_timeout``), then exit 0; what was not delivered stays on disk.
- SIGHUP: re-read the configuration; a bad one is logged and the running one kept.
- Diagnostics are plain lines on stderr (journald); never a secret (credentials are read by
  the client at signing time and appear in no log line, STATUS or metric).
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from yai_spool.daemon.config import DaemonConfig, SpoolTarget
from yai_spool.daemon.discovery import SpoolWatcher, scan_directory
from yai_spool.daemon.metrics import MetricsServer, start_metrics
from yai_spool.daemon.notify import Notifier, watchdog_interval
from yai_spool.daemon.signals import Wakeup
from yai_spool.daemon.status import DaemonTotals, SpoolSnapshot, status_line
from yai_spool.shipping.config import FlusherConfig
from yai_spool.shipping.cycle import Sender
from yai_spool.shipping.retry import RetryPolicy
from yai_spool.shipping.thread import ThreadFlusher
from yai_spool.sls.credentials import CredentialsProvider
from yai_spool.sls.encoding import decode_log_group, encode_log_group
from yai_spool.sls.errors import ConfigError
from yai_spool.spool import Spool

__all__ = ["Daemon", "make_sender"]

log = logging.getLogger("yai_spool.daemon")

# FlusherConfig gains a topic override in a later flusher release (requests.md); until then a
# sender wrapper rewrites the LogGroup's topic.
_FLUSHER_HAS_TOPIC = "topic" in {f.name for f in dataclasses.fields(FlusherConfig)}


class _TopicSender:
    """Stopgap: re-encode each batch with the configured topic (only when one is set)."""

    def __init__(self, inner: Sender, topic: str) -> None:
        self._inner = inner
        self._topic = topic

    def put_raw(self, project: str, logstore: str, raw: bytes) -> object:
        group = dataclasses.replace(decode_log_group(raw), topic=self._topic)
        return self._inner.put_raw(project, logstore, encode_log_group(group))

    def close(self) -> None:
        self._inner.close()


def make_sender(target: SpoolTarget, credentials: CredentialsProvider) -> Sender:
    """The PutLogs client of one spool (httpx loads only when the daemon actually ships)."""
    from yai_spool.sls.client import PutLogsClient  # noqa: PLC0415

    shipping = target.shipping
    client: Sender = PutLogsClient(
        target.endpoint,
        credentials_provider=credentials,
        compression=shipping.compression,
        signature_version=shipping.signature_version,
        signature_method=shipping.signature_method,
        region=shipping.region,
    )
    if target.topic is not None and not _FLUSHER_HAS_TOPIC:
        return _TopicSender(client, target.topic)
    return client


def flusher_config(target: SpoolTarget, poll_interval: float) -> FlusherConfig:
    shipping = target.shipping
    options: dict[str, object] = {}
    if _FLUSHER_HAS_TOPIC:
        options["topic"] = target.topic
    return FlusherConfig(
        max_batch_records=shipping.batch_size,
        max_batch_bytes=shipping.batch_bytes,
        linger=shipping.linger,
        poll_interval=poll_interval,
        retry=RetryPolicy(max_age=shipping.max_age),
        project=target.project,
        logstore=target.logstore,
        **options,  # type: ignore[arg-type]
    )


@dataclass
class _Managed:
    target: SpoolTarget
    spool: Spool
    flusher: ThreadFlusher
    thread_name: str


def _thread_alive(name: str) -> bool:
    return any(t.name == name and t.is_alive() for t in threading.enumerate())


class Daemon:
    """One ``yai-spool run`` process.

    Args:
        config: the validated configuration.
        credentials: signs every request (see ``daemon.credentials``).
        loader: re-reads the configuration on SIGHUP (``None``: reload keeps ``config``).
        notifier: the sd_notify channel (default: ``$NOTIFY_SOCKET``).
        watchdog: seconds between ``WATCHDOG=1`` (default: from ``$WATCHDOG_USEC``).
        sender_factory: builds the PutLogs client of one spool.
    """

    def __init__(
        self,
        config: DaemonConfig,
        *,
        credentials: CredentialsProvider,
        loader: Callable[[], DaemonConfig] | None = None,
        notifier: Notifier | None = None,
        watchdog: float | None = None,
        sender_factory: Callable[[SpoolTarget, CredentialsProvider], Sender] = make_sender,
        wall_clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.wakeup = Wakeup()
        self._credentials = credentials
        self._loader = loader
        self._notifier = notifier if notifier is not None else Notifier()
        self._watchdog = watchdog if watchdog is not None else watchdog_interval()
        self._sender_factory = sender_factory
        self._wall = wall_clock
        self._mono = monotonic
        self._lock = threading.RLock()  # guards _managed/_retired against the metrics thread
        self._managed: dict[Path, _Managed] = {}
        self._retired: list[tuple[str, Spool]] = []
        # path -> (error, next attempt on the monotonic clock, current retry delay)
        self._failed: dict[Path, tuple[str, float, float]] = {}
        self._generation = 0
        self._watcher: SpoolWatcher | None = None
        self._metrics: MetricsServer | None = None
        self._delivered_before = 0  # by flushers that were replaced
        self._requests_before = 0
        self._reloads = 0
        self._reload_failures = 0
        self._restarts = 0

    # -- observation (any thread) --------------------------------------------------------

    def snapshots(self) -> list[SpoolSnapshot]:
        with self._lock:
            out = []
            for m in self._managed.values():
                try:
                    stats, error = m.spool.stats(), None
                except Exception as exc:  # a broken spool must not break STATUS/metrics
                    stats, error = None, f"{type(exc).__name__}: {exc}"
                out.append(
                    SpoolSnapshot(
                        m.target, stats, m.flusher.stats.snapshot(), m.spool.is_flusher, error
                    )
                )
            return out

    def totals(self) -> DaemonTotals:
        with self._lock:
            flushers = [m.flusher.stats for m in self._managed.values()]
            return DaemonTotals(
                delivered=self._delivered_before + sum(s.delivered for s in flushers),
                requests=self._requests_before + sum(s.requests for s in flushers),
                reloads=self._reloads,
                reload_failures=self._reload_failures,
                flusher_restarts=self._restarts,
            )

    def status(self) -> str:
        return status_line(self.snapshots(), self.totals(), self._wall())

    @property
    def metrics_port(self) -> int | None:
        return self._metrics.port if self._metrics is not None else None

    # -- file-system events (observer thread) --------------------------------------------

    def _on_write(self, path: Path) -> None:
        managed = self._managed.get(path)  # a dict read is atomic; the loop swaps entries
        if managed is not None:
            managed.flusher.wake()

    def _on_change(self, path: Path) -> None:
        managed = path in self._managed
        if (not managed and self.config.adopts(path)) or (managed and not path.exists()):
            self.wakeup.request_rescan()

    # -- lifecycle -----------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM/SIGINT; returns the process exit code."""
        self.wakeup.install()
        try:
            try:
                self._watcher = SpoolWatcher(
                    self.config.watch, self.config.poll_interval, self._on_write, self._on_change
                )
                self._watcher.start(self.config.watched_directories)
                with self._lock:
                    self._reconcile()
                if self.config.metrics_port is not None:
                    self._metrics = start_metrics(
                        self.config.metrics_port, self.snapshots, self.totals
                    )
                    log.info("metrics on http://127.0.0.1:%d/metrics", self.config.metrics_port)
            except (OSError, ConfigError) as exc:
                log.error("cannot start: %s", exc)
                self._shutdown(drain=0.0, announce=False)
                return 1
            status = self.status()
            self._notifier.ready(status)
            log.info("ready: %s", status)
            self._loop()
            return self._shutdown(drain=self.config.drain_timeout, announce=True)
        finally:
            if self._watcher is not None:
                self._watcher.stop()
            if self._metrics is not None:
                self._metrics.close()
            self.wakeup.close()
            self._notifier.close()

    def _loop(self) -> None:
        now = self._mono()
        next_status = now + self.config.status_interval
        next_rescan = now + self.config.rescan_interval
        next_ping = now
        while self.wakeup.stop_signal is None:
            if self.wakeup.reload_requested:
                self.wakeup.reload_requested = False
                self._reload()
                next_status = 0.0  # show the new state at once
            now = self._mono()
            retry_due = any(at <= now for _, at, _ in self._failed.values())
            if self.wakeup.rescan_requested or retry_due or now >= next_rescan:
                self.wakeup.rescan_requested = False
                with self._lock:
                    self._reconcile()
                next_rescan = now + self.config.rescan_interval
            self._housekeeping()
            now = self._mono()
            if now >= next_status:
                self._notifier.status(self.status())
                next_status = now + self.config.status_interval
            # Reaching this line is the health check: every step above finished.
            if self._watchdog is not None and now >= next_ping:
                self._notifier.watchdog()
                next_ping = now + self._watchdog
            wake_at = min(next_status, next_rescan, *(at for _, at, _ in self._failed.values()))
            if self._watchdog is not None:
                wake_at = min(wake_at, next_ping)
            self.wakeup.wait(wake_at - self._mono())

    def _shutdown(self, *, drain: float, announce: bool) -> int:
        sig = self.wakeup.stop_signal
        signame = signal.Signals(sig).name if sig is not None else "stop"
        if announce:
            self._notifier.stopping(f"draining up to {drain:g}s ({signame})")
            log.info("%s: draining %d spools for up to %gs", signame, len(self._managed), drain)
        with self._lock:
            managed = list(self._managed.values())
            self._managed.clear()
            self._stop_all(managed, drain)
            left = 0
            for m in managed:
                try:
                    left += m.spool.stats().ready_records
                except Exception:
                    log.debug("stats at exit failed for %s", m.target.path, exc_info=True)
            self._close_retired()
        if announce:
            log.info(
                "stopped: %d records delivered since start, %d ready records left on disk",
                self._delivered_before,
                left,
            )
        return 0

    def _stop_all(self, managed: list[_Managed], drain: float) -> None:
        """Stop flushers *in parallel* against one deadline and retire their spools.

        ``ThreadFlusher.stop`` returns by ``drain`` + ``flusher.ABANDON_GRACE`` even with a
        request in flight (it is cancelled at the deadline; its batch stays leased for the
        next flusher), so N spools cost one deadline, not N (a reload during an SLS hang must
        not outlast the watchdog).
        """
        stoppers = [
            threading.Thread(target=m.flusher.stop, args=(drain,), name="yai-spool-stop")
            for m in managed
        ]
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join(drain + 10.0)  # stop() bounds itself; this only guards against a bug
        for m in managed:
            self._delivered_before += m.flusher.stats.delivered
            self._requests_before += m.flusher.stats.requests
            self._retired.append((m.thread_name, m.spool))

    # -- reconciliation (main thread, under _lock) ---------------------------------------

    def _reconcile(self) -> None:
        """Make the managed set match the configuration and what is on disk."""
        config = self.config
        discovered = {d.path: scan_directory(d.path) for d in config.directories}
        wanted = config.resolve(discovered)
        if self._watcher is not None:
            self._watcher.set_directories(config.watched_directories)
        leaving: list[_Managed] = []
        for path, managed in list(self._managed.items()):
            if path not in wanted:
                log.info("%s: no longer configured or gone; leaving it", path)
            elif not path.exists():
                log.info("%s: file vanished; reopening", path)
            elif wanted[path] != managed.target:
                log.info(
                    "%s: destination changed to %s %s; restarting its flusher",
                    path,
                    wanted[path].endpoint,
                    wanted[path].label,
                )
            else:
                continue
            leaving.append(self._managed.pop(path))
        if leaving:
            self._stop_all(leaving, 0.0)
            self._close_retired()
        for path in list(self._failed):
            if path not in wanted:  # gone or unconfigured: stop retrying it
                del self._failed[path]
        now = self._mono()
        for path, target in wanted.items():
            if path in self._managed:
                continue
            failed = self._failed.get(path)
            if failed is not None and now < failed[1]:
                continue
            self._open(target)

    def _open(self, target: SpoolTarget) -> None:
        path = target.path
        try:
            spool = Spool(path)
        except Exception as exc:
            self._open_failed(path, f"{type(exc).__name__}: {exc}")
            return
        if self._failed.pop(path, None) is not None:
            log.info("%s: opened after earlier failures", path)
        for event in spool.open_events:
            log.warning("%s: %s %s", path, event.kind, dict(event.detail))
        self._generation += 1
        name = f"yai-spool-flusher[{path.name}]#{self._generation}"
        try:
            sender = self._sender_factory(target, self._credentials)
            flusher = ThreadFlusher(
                spool, sender, flusher_config(target, self.config.poll_interval), name=name
            )
        except Exception as exc:
            spool.close()
            self._open_failed(path, f"cannot build a flusher: {exc}")
            return
        flusher.start()
        self._managed[path] = _Managed(target, spool, flusher, name)
        log.info("%s: draining to %s %s", path, target.endpoint, target.label)

    def _open_failed(self, path: Path, message: str) -> None:
        """Retry soon, then less often: a spool caught mid-creation by another process opens
        a moment later, a permission problem needs an operator (rescan_interval at most)."""
        previous = self._failed.get(path)
        delay = self.config.poll_interval if previous is None else previous[2] * 2
        delay = min(delay, self.config.rescan_interval)
        if previous is None or previous[0] != message:  # each distinct failure logged once
            log.warning("%s: cannot open (%s); retrying in %gs", path, message, delay)
        self._failed[path] = (message, self._mono() + delay, delay)

    def _close_retired(self) -> None:
        keep = []
        for name, spool in self._retired:
            if _thread_alive(name):
                keep.append((name, spool))  # still finishing one request: close it later
                continue
            try:
                spool.close()
            except Exception:
                log.debug("closing %s failed", spool.path, exc_info=True)
        self._retired = keep

    def _housekeeping(self) -> None:
        with self._lock:
            for path, managed in list(self._managed.items()):
                if not managed.flusher.running:
                    # ThreadFlusher logged the crash; it also closed its sender, so a restart
                    # needs a new flusher (and a new Spool, see the module invariants).
                    log.error("%s: flusher thread ended unexpectedly; restarting it", path)
                    self._restarts += 1
                    self._stop_all([self._managed.pop(path)], 0.0)
                    self._open(managed.target)
            if self._retired:
                self._close_retired()

    def _reload(self) -> None:
        self._notifier.reloading()
        source = self.config.source_file or "the command line"
        try:
            if self._loader is None:
                raise ConfigError("no configuration file to reload")
            new = self._loader()
        except Exception as exc:
            self._reload_failures += 1
            log.error("reload of %s failed; keeping the running configuration:\n%s", source, exc)
            self._notifier.ready(self.status())
            return
        old = self.config
        if new.metrics_port != old.metrics_port or new.watch != old.watch:
            log.warning("metrics_port and watch changes take effect at the next restart")
            new = dataclasses.replace(new, metrics_port=old.metrics_port, watch=old.watch)
        logging.getLogger("yai_spool").setLevel(new.log_level.upper())
        with self._lock:
            self.config = new
            self._failed.clear()  # new settings deserve a new attempt
            self._reconcile()
        self._reloads += 1
        status = self.status()
        log.info("reloaded %s: %s", source, status)
        self._notifier.ready(status)
