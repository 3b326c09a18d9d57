"""Streaming sinks: incident bundles rewritten as incidents open, grow and close; rolling logs.

An incident's bundle is written within seconds of the finding that opens it (an early
version), rewritten as findings join, and written final when correlation closes it. Each
write goes to a temporary name and is renamed over ``stix/<incident-id>.json`` (and
``stix-<profile>/`` for further profiles), so a reader never sees half a file.

STIX versioning rules the rewrites: two different contents never share one ``modified``. A
new version normally carries a later ``modified`` already (the latest evidence time); when a
finding that joins has an earlier time than the evidence already written (out of order), or
changes the content under the same time, the new version's incident and grouping take the
written ``modified`` + 1 ms, and so does each other object whose content changed without a
later evidence time of its own; unchanged objects keep the version already written. A version identical to the file on
disk is not written again, an early version never replaces a final one, and an early
version whose findings are all in the written version is stale (a restart's replay), so a
restarted job rewrites nothing it had already got right.

Each version written also writes or revises the incident's mandated-report drafts
(``reports/mandated/<incident-id>/``, ``pipelines.mandated.write_mandated``); a withdrawal
removes them.

``incidents.jsonl`` (every version written, with ``"version"``: early | final | withdrawn),
``findings.jsonl`` (members of final versions) and ``deadletter/deadletter.jsonl`` are
appended to and rolled to a dated name past ``ROLL_BYTES``. ``_stream/incidents.jsonl``
indexes what was written, for the sinks and for a restart's replay horizon.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import shutil
import sys
import threading
from typing import Any, Iterator, Optional

import apache_beam as beam

from pipelines.config import Config
from stix_export.writer import serialize_bundle
from transforms.export import incident_json
from transforms.model import DeadLetter, Incident

ROLL_BYTES = 64 * 1024 * 1024
INDEX = os.path.join("_stream", "incidents.jsonl")
_LOCK = threading.RLock()  # one SDK worker process: bundles run on threads of it


def _seconds(ts: str) -> float:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def _rfc3339(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RollingFile:
    """Append whole lines; past ``max_bytes`` the file is renamed ``<stem>-<UTC time>.jsonl``."""

    def __init__(self, path: str, max_bytes: int = ROLL_BYTES):
        self.path = path
        self.max_bytes = max_bytes

    def append(self, lines: list[str]) -> None:
        if not lines:
            return
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        if os.path.exists(self.path) and os.path.getsize(self.path) >= self.max_bytes:
            stem = self.path.removesuffix(".jsonl")
            os.replace(self.path, f"{stem}-{dt.datetime.now(dt.timezone.utc):%Y%m%dT%H%M%S%f}.jsonl")
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write("".join(line + "\n" for line in lines))


def _read_index(out_dir: str) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    path = os.path.join(out_dir, INDEX)
    if os.path.exists(path):
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a line cut by a kill
                latest[entry["id"]] = entry
    return latest


def incident_spans(state_dir: str) -> list[tuple[float, float]]:
    """(first seen, last seen) in epoch seconds of every incident the sinks have written."""
    entries = _read_index(os.path.dirname(state_dir.rstrip(os.sep)))
    return [(_seconds(e["first_seen"]), _seconds(e["last_seen"])) for e in entries.values()
            if e["kind"] != "withdrawn"]


def open_versions(out_dir: str) -> tuple[tuple[str, str], ...]:
    """(id, last seen) of every incident whose latest version written is an early one: what a
    restarted stream's correlation must either carry on or withdraw."""
    return tuple(sorted((e["id"], e["last_seen"]) for e in _read_index(out_dir).values()
                        if e["kind"] == "early" and not e["final"] and e.get("last_seen")))


class _Index:
    _by_dir: dict[str, "_Index"] = {}

    def __init__(self, out_dir: str):
        self.path = os.path.join(out_dir, INDEX)
        self.entries = _read_index(out_dir)

    @classmethod
    def of(cls, out_dir: str) -> "_Index":
        with _LOCK:
            if out_dir not in cls._by_dir:
                cls._by_dir[out_dir] = cls(out_dir)
            return cls._by_dir[out_dir]

    def add(self, entry: dict[str, Any]) -> None:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
        self.entries[entry["id"]] = entry


class _WriteVersionFn(beam.DoFn):
    """(kind, incident or id) → bundle files, log lines and index entries (see module doc)."""

    def __init__(self, cfg: Config, out_dir: str):
        self.cfg = cfg
        self.out_dir = out_dir

    def setup(self) -> None:
        from stix_export.redact import load_secret

        from stix_export.redact import Redactor

        self.secret = load_secret(self.cfg)
        self.redactors = [Redactor(p, self.cfg, self.secret) for p in self.cfg.export.effective_profiles()]
        self.index = _Index.of(self.out_dir)
        self.incidents_log = RollingFile(os.path.join(self.out_dir, "incidents.jsonl"))
        self.findings_log = RollingFile(os.path.join(self.out_dir, "findings.jsonl"))

    def _paths(self, incident_id: str) -> list[str]:
        from stix_export.writer import profile_dir_name

        profiles = self.cfg.export.effective_profiles()
        # named as batch names them: by the incident id, by its keyed reference where redacting
        return [os.path.join(self.out_dir, profile_dir_name(p.name, profiles[0].name), f"{r.incident_ref(incident_id)}.json")
                for p, r in zip(profiles, self.redactors)]

    def _bundle(self, incident: Incident, n: int) -> dict[str, Any]:
        """The bundle of the ``n``-th sharing profile."""
        from stix_export.bundle import incident_bundle

        return incident_bundle(incident, self.cfg, self.cfg.export.effective_profiles()[n], self.secret)

    def _bundles(self, incident: Incident) -> list[dict[str, Any]]:
        return [self._bundle(incident, n) for n in range(len(self.cfg.export.effective_profiles()))]

    def _text(self, incident: Incident, n: int) -> str:
        return serialize_bundle(self._bundle(incident, n))

    def start_bundle(self) -> None:
        self.pending: list[tuple[str, Any]] = []

    def process(self, element: tuple[str, Any]) -> Iterator[str]:
        self.pending.append(element)  # written at the end of the bundle, see finish_bundle
        return iter(())

    def finish_bundle(self) -> None:
        """Write the bundle's versions. Of several versions of one incident in one bundle only
        the last early one (or the finals, in order) are written: each later version holds
        every member of the earlier ones, so the files end the same with one rewrite instead
        of several (a backlog brings many versions of one incident at once).

        The first profile's file of every version goes first (incidents without a file yet
        before revisions), then the other profiles' files, then the drafts, logs and index
        entries: an analyst's first alert does not wait for the other incidents' remaining
        work. The index entry still follows the version's files and drafts (a restart
        rewrites what it lacks)."""
        with _LOCK:
            for round_ in _rounds(coalesce(self.pending)):
                self._write_round(round_)
        self.pending = []

    def _write_round(self, elements: list[tuple[str, Any]]) -> None:
        """Versions of distinct incidents (``_rounds``), in the order of the doc above."""
        planned: list[_Planned] = []
        for kind, payload in elements:
            if kind == "withdrawn":
                list(self._withdraw(payload))
            elif payload.severity >= self.cfg.export.min_severity:
                plan = self._plan(kind, payload)
                if plan is not None:
                    planned.append(plan)
        # first files first: incidents nothing was written for yet (stable: in arrival order)
        for plan in sorted(planned, key=lambda x: x.prev is not None):
            self._first_file(plan)
        for plan in planned:
            self._other_files(plan)
        for plan in planned:
            list(self._log(plan.kind, plan.incident, plan.entry or self._entry(plan)))

    def _withdraw(self, incident_id: str) -> Iterator[str]:
        prev = self.index.entries.get(incident_id)
        if prev is not None and (prev["final"] or prev["kind"] == "withdrawn"):
            return
        for path in self._paths(incident_id):
            if os.path.exists(path):
                os.remove(path)
        from pipelines.mandated import incident_dir

        shutil.rmtree(incident_dir(self.out_dir, incident_id), ignore_errors=True)  # its drafts go with it
        # Kept even when no version was written yet: versions and withdrawals travel in
        # different bundles, and an early version arriving after its withdrawal is dropped.
        self.index.add({**(prev or {"id": incident_id, "final": False, "findings": [], "first_seen": None,
                                     "last_seen": None, "modified": None}), "kind": "withdrawn"})
        self.incidents_log.append([json.dumps({"incident_id": incident_id, "version": "withdrawn"}, sort_keys=True)])
        yield incident_id

    def _plan(self, kind: str, incident: Incident) -> Optional["_Planned"]:
        """What writing this version takes, or None when it adds nothing to what is written."""
        prev = self.index.entries.get(incident.incident_id)
        digest = _digest(incident)
        if prev is not None and prev["kind"] == "withdrawn":
            if kind == "early":
                return None  # an early version that arrived after its withdrawal
            prev = None
        if prev is not None and _dominated(digest, prev.get("digest") or {}):
            same = kind == "final" and not prev["final"] and digest == prev.get("digest")
            if same and prev.get("evidence") == _evidence(incident):
                # the early version was final: only logged again, as final
                return _Planned(kind, incident, prev, digest, [], [], {**prev, "kind": kind, "final": True})
            if not same:
                return None  # already written, or an older version arriving late (or a restart's replay)
            # Same members, hits and times, other evidence: records of the same hits came later
            # (a sibling log's copy of an event, read from another file or partition). Written.
        paths = self._paths(incident.incident_id)
        return _Planned(kind, incident, prev, digest, paths, [None] * len(paths))

    def _first_file(self, plan: "_Planned") -> None:
        """The first profile's text (the costly step: one bundle build), written. A version
        whose content changed under the written version's time is re-versioned here, all
        profiles at once (see ``_reversioned``)."""
        if plan.entry is not None:
            return
        incident, paths = plan.incident, plan.paths
        natural0 = self._bundle(incident, 0)
        text0 = serialize_bundle(natural0)
        on_disk = _read(paths[0])
        if on_disk is not None and on_disk != text0:
            written = _bundle_modified(on_disk)
            if written is not None and _seconds(incident.modified or incident.last_seen) <= _seconds(written):
                at_written = dataclasses.replace(incident, modified=written)
                if self._text(at_written, 0) == on_disk:  # the first profile decides
                    plan.texts = [on_disk, *(self._text(at_written, n) for n in range(1, len(paths)))]
                else:
                    natural = [natural0, *(self._bundle(incident, n) for n in range(1, len(paths)))]
                    plan.incident = incident = dataclasses.replace(
                        incident, modified=_rfc3339(_seconds(written) + 0.001))
                    plan.texts = [serialize_bundle(_reversioned(_read(path), n, b))
                                  for path, n, b in zip(paths, natural, self._bundles(incident))]
        if plan.texts[0] is None:
            plan.texts[0] = text0
        _write_changed(paths[0], plan.texts[0])

    def _other_files(self, plan: "_Planned") -> None:
        for n, path in enumerate(plan.paths):
            if plan.texts[n] is None:
                plan.texts[n] = serialize_bundle(self._bundle(plan.incident, n))
            if n:
                _write_changed(path, plan.texts[n])

    def _entry(self, plan: "_Planned") -> dict[str, Any]:
        incident = plan.incident
        return {
            "id": incident.incident_id, "kind": plan.kind,
            "final": plan.kind == "final" or bool(plan.prev and plan.prev.get("final")), "digest": plan.digest,
            "evidence": _evidence(incident),
            "findings": [f.finding_id for f in incident.findings], "first_seen": incident.first_seen,
            "last_seen": incident.last_seen, "modified": _bundle_modified(plan.texts[0]),
        }

    def _log(self, kind: str, incident: Incident, entry: dict[str, Any]) -> Iterator[str]:
        from pipelines.mandated import write_mandated

        incident = dataclasses.replace(incident, modified=_same_instant(entry["modified"], incident.modified or incident.last_seen))
        # the mandated-report drafts appear with the incident's first bundle and are revised with it
        try:
            write_mandated(self.cfg, [incident], self.out_dir)
        except Exception as exc:  # a draft that would leak a redacted value: said, and the stream goes on
            print(f"cranewatch stream: drafts of incident {incident.incident_id} not written: "
                  f"{type(exc).__name__}: {exc}", file=sys.stderr)
        self.index.add(entry)
        row = json.loads(incident_json(incident))
        self.incidents_log.append([json.dumps({**row, "version": kind}, sort_keys=True)])
        if kind == "final":
            self.findings_log.append([
                json.dumps({**f.to_dict(), "incident_id": incident.incident_id}, sort_keys=True)
                for f in incident.findings
            ])
        yield incident.incident_id


@dataclasses.dataclass
class _Planned:
    """One version on its way to disk: its texts per profile fill in as they are built."""

    kind: str
    incident: Incident
    prev: Optional[dict[str, Any]]  # the index entry of the version written before
    digest: dict[str, list[Any]]
    paths: list[str]
    texts: list[Optional[str]]
    entry: Optional[dict[str, Any]] = None  # set: nothing to write but the log and index


def _rounds(elements: list[tuple[str, Any]]) -> list[list[tuple[str, Any]]]:
    """``elements`` in rounds where each incident appears once, in order: a second version
    of an incident (two finals, a withdrawal then a version) waits for the round after the
    first's, whose index entry it is judged against."""
    rounds: list[list[tuple[str, Any]]] = []
    seen: dict[str, int] = {}
    for kind, payload in elements:
        key = payload if kind == "withdrawn" else payload.incident_id
        n = seen[key] = seen.get(key, -1) + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append((kind, payload))
    return rounds


def coalesce(elements: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """One bundle's (kind, incident or id) versions, in order, without the early versions of
    an incident that a later version in the same list supersedes (a later early one, or a
    final). Withdrawals and finals all stay."""
    last_early: dict[str, int] = {}
    has_final: set[str] = set()
    for n, (kind, payload) in enumerate(elements):
        if kind == "early":
            last_early[payload.incident_id] = n
        elif kind == "final":
            has_final.add(payload.incident_id)
    return [(kind, payload) for n, (kind, payload) in enumerate(elements)
            if kind != "early" or (payload.incident_id not in has_final and last_early[payload.incident_id] == n)]


def _reversioned(on_disk: Optional[str], natural: dict[str, Any], bumped: dict[str, Any]) -> dict[str, Any]:
    """A version that needed a later ``modified`` than its evidence gives (content changed
    under the written version's time), re-versioning only the objects that changed.

    ``natural`` is the bundle at the evidence's own times (what batch writes), ``bumped`` the
    one at the new incident time, where every incident-scoped object takes that time. The
    incident and grouping take the new time; every other object: unchanged from the written file → kept as written; changed, with a natural
    ``modified`` later than the written one's → natural; changed under the same or an earlier
    one → bumped. So an object's id + ``modified`` never names two contents, and objects the
    revision did not touch keep batch's version."""
    try:
        old = json.loads(on_disk or "{}")
        written = {o["id"]: o for o in old.get("objects", [])}
    except ValueError:
        old, written = {}, {}
    if [o["id"] for o in natural["objects"]] != [o["id"] for o in bumped["objects"]]:
        return bumped
    if [o["id"] for o in old.get("objects", [])] == [o["id"] for o in natural["objects"]] and all(
            _content(written[n["id"]]) == _content(n) for n in natural["objects"]):
        return old  # nothing changed: the written version stands (a replay after a restart)
    objects = []
    for n, b in zip(natural["objects"], bumped["objects"]):
        prev = written.get(n["id"])
        if n.get("type") in ("incident", "grouping"):
            objects.append(b)  # the incident's version: later than every object written
        elif prev is not None and _content(prev) == _content(n):
            objects.append(prev)
        elif prev is None or "modified" not in n or "modified" not in prev \
                or _seconds(n["modified"]) > _seconds(prev["modified"]):
            objects.append(n)
        else:
            objects.append(b)
    return {**bumped, "objects": objects}


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k != "modified"}


def _same_instant(written: Optional[str], own: Optional[str]) -> Optional[str]:
    """The version as the incident spells it (microseconds, as batch writes it) when the
    bundle's ``modified`` is that same instant, else the bundle's, spelled the same way."""
    if not written:
        return own
    if own and _instant(written) == _instant(own):
        return own
    return _instant(written).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _instant(ts: str) -> dt.datetime:
    return dt.datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _digest(incident: Incident) -> dict[str, list[Any]]:
    """Per member finding: its hit count and last sighting. A later version of an incident
    only adds findings or grows them, so it is never dominated by an earlier one."""
    return {f.finding_id: [f.count, f.last_seen] for f in incident.findings}


def _evidence(incident: Incident) -> str:
    """A fingerprint of the evidence each member cites (the digest counts hits, not which
    records are quoted)."""
    refs = [[f.finding_id, [e.raw_ref for e in f.evidence]] for f in incident.findings]
    return hashlib.sha256(json.dumps(refs, sort_keys=True).encode()).hexdigest()[:32]


def _dominated(new: dict[str, list[Any]], old: dict[str, list[Any]]) -> bool:
    """True when ``new`` adds nothing to ``old`` (no new finding, no more hits, no later time)."""
    return all(fid in old and n[0] <= old[fid][0] and _seconds(n[1]) <= _seconds(old[fid][1])
               for fid, n in new.items())


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _write_atomic(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _write_changed(path: str, text: str) -> None:
    if _read(path) != text:
        _write_atomic(path, text)


def _bundle_modified(text: str) -> Optional[str]:
    """The ``modified`` of the incident object in a bundle's text."""
    try:
        bundle = json.loads(text)
    except ValueError:
        return None
    return next((o.get("modified") for o in bundle.get("objects", []) if o.get("type") == "incident"), None)


class _AppendDeadLettersFn(beam.DoFn):
    def __init__(self, out_dir: str):
        self.out_dir = out_dir

    def setup(self) -> None:
        self.log = RollingFile(os.path.join(self.out_dir, "deadletter", "deadletter.jsonl"))

    def process(self, dead: DeadLetter) -> Iterator[None]:
        with _LOCK:
            self.log.append([dead.to_json()])
        return iter(())


class WriteStreamOutputs(beam.PTransform):
    """The streaming sink end: early and final incident versions, withdrawals, dead letters."""

    def __init__(self, cfg: Config, out_dir: str):
        super().__init__()
        self.cfg = cfg
        self.out_dir = out_dir

    def expand(self, stages: dict[str, beam.PCollection]) -> beam.PCollection:
        versions = (
            stages["incidents"] | "Final versions" >> beam.Map(lambda i: ("final", i)),
            stages["early"] | "Early versions" >> beam.Map(lambda i: ("early", i)),
            stages["withdrawn"] | "Withdrawn ids" >> beam.Map(lambda i: ("withdrawn", i)),
        ) | "All incident versions" >> beam.Flatten()
        stages["dead_letters"] | "Append dead letters" >> beam.ParDo(_AppendDeadLettersFn(self.out_dir))
        return versions | "Write incident versions" >> beam.ParDo(_WriteVersionFn(self.cfg, self.out_dir))
