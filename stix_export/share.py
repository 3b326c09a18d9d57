"""Push a run's bundles to a TAXII 2.1 collection (``cranewatch share``), with ``taxii2-client``.

* Which bundles: one sharing profile's directory of a run's output (``stix/`` for the first
  profile, ``stix-<name>/`` for the others; ``summary.json`` names them), plus that
  profile's run report (``reports/<name>.json``) when the run wrote one.
* What is sent: per bundle, the objects the collection does not hold yet. The collection's
  manifest (every version) is read first; an object whose id and version (``modified``, else
  ``created``; an observable by id alone) is already there is skipped. Pushing an unchanged
  run again sends nothing and is reported as a no-op; a revised incident sends its new
  versions only. TAXII servers reject duplicate id + version anyway (medallion reports them
  as failures), so comparing first is what tells "already shared" from "refused".
* Objects created by others are not pushed back: the ISAC's indicators and identity that a
  threat-intel sighting carries (so that its ``sighting_of_ref`` resolves inside the bundle)
  are already the collection owner's; sending them again would echo them as if the port
  published them. ``--include-received`` sends them too. "Created by others": an SDO or
  SRO whose ``created_by_ref`` is not the bundle's producer (the creator of its grouping,
  incident or report), or an identity other than the producer. Observables and marking
  definitions are always sent.
* TLP:RED bundles are refused unless ``--allow-red``: a port's internal set is often RED and
  is the default (first) profile, so pushing it must be a deliberate choice.
* Credentials: ``CRANEWATCH_TAXII_USER`` / ``CRANEWATCH_TAXII_PASSWORD`` from the environment,
  or a file whose first line is ``user:password`` (``--credentials-file``, e.g. mode 0600).
  Never taken on the command line, never printed or logged.
"""
from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

USER_ENV = "CRANEWATCH_TAXII_USER"
PASSWORD_ENV = "CRANEWATCH_TAXII_PASSWORD"


class ShareError(Exception):
    """A push that could not be done; the message never holds credentials."""


@dataclass
class PushResult:
    bundles: int = 0
    objects: int = 0  # objects in the bundles (each id + version once)
    sent: int = 0  # objects the collection did not hold and accepted
    already: int = 0  # objects the collection already held (not sent)
    failed: list[str] = field(default_factory=list)  # "id: message" for refused objects
    withheld: int = 0  # objects created by others (received intel), left out

    @property
    def noop(self) -> bool:
        return self.sent == 0 and not self.failed and self.objects > 0

    def describe(self, collection: str) -> str:
        if self.noop:
            return (f"no-op: all {self.objects} objects of {self.bundles} bundle(s) are already in "
                    f"collection {collection}; nothing sent")
        text = (f"pushed {self.sent} new object(s) from {self.bundles} bundle(s) to collection {collection}"
                f" ({self.already} already there)")
        if self.failed:
            text += f"; {len(self.failed)} refused: " + "; ".join(self.failed[:5])
        if self.withheld:
            text += (f"; {self.withheld} object(s) created by others (received threat intel) not pushed back"
                     " (--include-received to send them)")
        return text


def credentials(credentials_file: str | None = None) -> tuple[str | None, str | None]:
    """(user, password) from ``credentials_file`` (first line ``user:password``) or the environment."""
    if credentials_file:
        try:
            line = Path(credentials_file).read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError):
            raise ShareError(f"--credentials-file: expected a readable file with a user:password line, got {credentials_file!r}") from None
        user, sep, password = line.partition(":")
        if not sep or not user:
            raise ShareError(f"--credentials-file: expected a first line user:password in {credentials_file!r}")
        return user, password
    user, password = os.environ.get(USER_ENV), os.environ.get(PASSWORD_ENV)
    if bool(user) != bool(password):
        raise ShareError(f"expected both {USER_ENV} and {PASSWORD_ENV} in the environment, or neither")
    return user or None, password or None


def profile_files(output: str | os.PathLike[str], profile: str | None = None) -> list[Path]:
    """The bundle files of one profile in a run's output (the first profile when None).

    Only a complete run is shared: an output folder without the run's completion marker
    (``pipelines/outputs.py``) is refused, so half a run never reaches a collection. A
    stream's output folder (its ``_streaming.json``) is shared as it stands: each bundle file
    is one whole version of its incident; sharing again sends the revisions since.
    """
    from pipelines.outputs import IncompleteRun, require_shareable

    try:
        require_shareable(str(output))
    except IncompleteRun as exc:
        raise ShareError(f"--output: refusing to share: {exc}") from None
    out = Path(output)
    dirs: dict[str, str] = {}
    summary = out / "summary.json"
    if summary.exists():
        dirs = {name: p["dir"] for name, p in json.loads(summary.read_text(encoding="utf-8")).get("profiles", {}).items()}
    if profile is None:
        sub = "stix"
        profile = next((name for name, d in dirs.items() if d == "stix"), None)
    elif profile in dirs:
        sub = dirs[profile]
    elif (out / f"stix-{profile}").is_dir():
        sub = f"stix-{profile}"
    else:
        known = ", ".join(sorted(dirs)) or "none recorded"
        raise ShareError(f"--profile: expected a sharing profile of the run in {out} ({known}), got {profile!r}")
    bdir = out / sub
    if not bdir.is_dir():
        raise ShareError(f"--output: expected a run output with {sub}/, got {out}")
    files = sorted(bdir.glob("*.json"))
    report = out / "reports" / f"{profile}.json" if profile else None
    if report is not None and report.exists():
        files.append(report)
    return files


def _version(obj: dict[str, Any]) -> str | None:
    return obj.get("modified") or obj.get("created")


def _instant(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def _held(collection: Any) -> tuple[set[str], set[tuple[str, dt.datetime]]]:
    """(ids, (id, version instant)) the collection holds, every version, all pages."""
    from taxii2client.v21 import as_pages

    ids: set[str] = set()
    versions: set[tuple[str, dt.datetime]] = set()
    for page in as_pages(collection.get_manifest, per_request=100, version="all"):
        for rec in page.get("objects", []):
            ids.add(rec["id"])
            if rec.get("version"):
                try:
                    versions.add((rec["id"], _instant(rec["version"])))
                except ValueError:
                    pass
    return ids, versions


def collection_url(api_root: str, collection_id: str) -> str:
    return f"{api_root.rstrip('/')}/collections/{collection_id}/"


def open_collection(api_root: str, collection_id: str, user: str | None, password: str | None) -> Any:
    from taxii2client.v21 import Collection

    return Collection(collection_url(api_root, collection_id), user=user, password=password)


def received_ids(objects: list[dict[str, Any]]) -> set[str]:
    """Ids of the objects in a bundle created by others than its producer (see the module doc)."""
    producers = {o["created_by_ref"] for o in objects
                 if o.get("type") in ("grouping", "incident", "report") and isinstance(o.get("created_by_ref"), str)}
    out = set()
    for o in objects:
        if o.get("type") == "marking-definition" or "created" not in o:  # markings; observables
            continue
        if o.get("type") == "identity":
            if o["id"] not in producers:
                out.add(o["id"])
        elif o.get("created_by_ref") not in producers:
            out.add(o["id"])
    return out if producers else set()


def push_bundles(files: Iterable[Path], collection: Any, include_received: bool = False) -> PushResult:
    """Push the objects of ``files`` the collection does not hold yet; see the module doc."""
    result = PushResult()
    ids, versions = _held(collection)
    seen: set[tuple[str, str | None]] = set()
    for path in files:
        bundle = json.loads(Path(path).read_text(encoding="utf-8"))
        result.bundles += 1
        new = []
        others = set() if include_received else received_ids(bundle.get("objects", []))
        for obj in bundle.get("objects", []):
            key = (obj["id"], _version(obj))
            if key in seen:  # shared objects (identity, attack-patterns) repeat across bundles
                continue
            seen.add(key)
            if obj["id"] in others:
                result.withheld += 1
                continue
            result.objects += 1
            version = _version(obj)
            if (version is None and obj["id"] in ids) or (version and (obj["id"], _instant(version)) in versions):
                result.already += 1
            else:
                new.append(obj)
        if not new:
            continue
        status = collection.add_objects({"objects": new}, wait_for_completion=True, poll_interval=0.2, timeout=60)
        result.sent += int(status.success_count)
        for f in status.failures or []:
            result.failed.append(f"{f.get('id')}: {f.get('message', 'refused')}")
        for obj in new:
            ids.add(obj["id"])
            if _version(obj):
                versions.add((obj["id"], _instant(_version(obj))))
    return result


def red_files(files: Iterable[Path]) -> list[Path]:
    """The bundles marked TLP:RED (for named recipients only, never a community collection)."""
    from stix_export.tlp import tlp_marking_id

    red = tlp_marking_id("red")
    return [p for p in files if any(o.get("id") == red for o in json.loads(Path(p).read_text(encoding="utf-8"))["objects"])]


def share(output: str, api_root: str, collection_id: str, profile: str | None = None,
          credentials_file: str | None = None, allow_red: bool = False, include_received: bool = False) -> PushResult:
    user, password = credentials(credentials_file)
    files = profile_files(output, profile)
    if not files:
        raise ShareError(f"--output: no bundles for profile {profile or '(first)'} in {output}")
    red = red_files(files)
    if red and not allow_red:
        raise ShareError(
            f"{len(red)} bundle(s) of profile {profile or '(first)'} are TLP:RED (named recipients only); "
            "choose a sharing profile with --profile, or pass --allow-red if this collection is such a recipient"
        )
    return push_bundles(files, open_collection(api_root, collection_id, user, password), include_received)
