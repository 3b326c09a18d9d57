"""``cranewatch share`` and ``cranewatch intel``: the ISAC-facing subcommands.

Kept here (``pipelines/cli.py`` only registers them) so the sharing code stays in one package.
Credentials are read from the environment or a file (see ``stix_export.share``), never from
the command line, and never printed.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
COMMANDS = ("share", "intel")


def add_parsers(sub: Any) -> None:
    s = sub.add_parser(
        "share",
        help="push a run's STIX bundles (one sharing profile) to a TAXII 2.1 collection",
        description="Credentials: CRANEWATCH_TAXII_USER/CRANEWATCH_TAXII_PASSWORD or --credentials-file "
        "(first line user:password). Objects the collection already holds are not sent again.",
    )
    s.add_argument("--taxii", required=True, metavar="API_ROOT_URL", help="TAXII 2.1 API root, e.g. https://isac.example/api1/")
    s.add_argument("--collection", required=True, metavar="ID", help="id of the TAXII collection to push to")
    s.add_argument("--output", required=True, metavar="DIR", help="the run output directory (cranewatch run --output)")
    s.add_argument("--profile", metavar="NAME", help="sharing profile to push (default: the first, stix/)")
    s.add_argument("--credentials-file", metavar="FILE", help="file whose first line is user:password")
    s.add_argument("--allow-red", action="store_true", help="also push bundles marked TLP:RED (refused by default)")
    s.add_argument("--include-received", action="store_true",
                   help="also push objects created by others (the ISAC's indicators and identity that threat-intel "
                   "sightings carry; left out by default: the collection's owner already has them)")

    i = sub.add_parser("intel", help="threat intel in: load STIX 2.1 indicator bundles into the intel store")
    isub = i.add_subparsers(dest="action", required=True)
    imp = isub.add_parser("import", help="import bundle files or a TAXII collection's indicators")
    imp.add_argument("files", nargs="*", metavar="FILE", help="STIX 2.1 bundle files")
    imp.add_argument("--taxii", metavar="API_ROOT_URL", help="pull indicators from this TAXII 2.1 API root")
    imp.add_argument("--collection", metavar="ID", help="the TAXII collection (with --taxii)")
    imp.add_argument("--credentials-file", metavar="FILE", help="file whose first line is user:password")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", help="use the config's intel.store")
    where.add_argument("--store", help="the intel store file")


def run(args: argparse.Namespace) -> int:
    from stix_export.share import ShareError

    try:
        if args.command == "share":
            return _share(args)
        return _intel(args)
    except ShareError as exc:
        print(f"cranewatch {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _share(args: argparse.Namespace) -> int:
    from stix_export.share import share

    try:
        result = share(args.output, args.taxii, args.collection, args.profile, args.credentials_file, args.allow_red,
                       args.include_received)
    except Exception as exc:
        from stix_export.share import ShareError

        if isinstance(exc, ShareError):
            raise
        # requests/taxii2client errors carry the URL, never the credentials
        print(f"cranewatch share failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(result.describe(args.collection))
    return EXIT_FAILED if result.failed else EXIT_OK


def _intel(args: argparse.Namespace) -> int:
    from stix_export import intel
    from stix_export.share import ShareError, credentials, open_collection

    policy = intel.Policy()  # with --store: the default minimum prefix lengths
    if args.config:
        from pipelines.config import load_config

        cfg = load_config(args.config)
        store = cfg.intel.store if os.path.isabs(cfg.intel.store) else os.path.join(cfg.base_dir, cfg.intel.store)
        policy = intel.Policy.of(cfg)
    else:
        store = args.store
    if bool(args.files) == bool(args.taxii):
        raise ShareError("expected bundle FILEs or --taxii URL --collection ID (one of them)")
    try:
        if args.taxii:
            if not args.collection:
                raise ShareError("--collection: expected a collection id with --taxii")
            user, password = credentials(args.credentials_file)
            intel.load_store(store, policy)  # an unreadable store is a usage error before any download
            try:
                report = intel.import_taxii(store, open_collection(args.taxii, args.collection, user, password),
                                            source=f"taxii:{args.taxii.rstrip('/')}/collections/{args.collection}",
                                            policy=policy)
            except intel.FeedError:
                raise
            except Exception as exc:
                print(f"cranewatch intel import failed: {type(exc).__name__}: {exc}", file=sys.stderr)
                return EXIT_FAILED
        else:
            report = intel.import_files(store, args.files, policy)
    except intel.FeedError as exc:  # a feed or store that is not one at all: nothing was changed
        print(f"cranewatch intel import: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in report.lines():
        print(intel.validation.printable(line))
    print(f"intel store: {store}")
    return EXIT_OK
