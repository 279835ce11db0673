"""Erase one person on request (GDPR art. 17, CCPA deletion), from the command line.

``python -m tools.forget --customer-id C0001234 --reason "ticket 4711"``
(``make forget CUSTOMER=C0001234 REASON="ticket 4711"``); the ``customer_erasure`` DAG runs the
same step. What it removes and what it keeps: ``pipeline.erasure`` and docs/privacy.md.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from core.settings import get_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customer-id", required=True)
    parser.add_argument("--reason", required=True, help="why (recorded with the request)")
    parser.add_argument("--by", default=getpass.getuser(), help="who asks (recorded)")
    args = parser.parse_args(argv)
    settings = get_settings()
    if not settings.warehouse_path.exists():
        print(f"No warehouse at {settings.warehouse_path}.", file=sys.stderr)
        return 1
    from pipeline.erasure import ErasureError, forget

    try:
        result = forget(args.customer_id, by=args.by, reason=args.reason, settings=settings)
    except ErasureError as exc:
        print(f"Erasure refused: {exc}", file=sys.stderr)
        return 1
    print(
        f"Erasure request {result['request_id']} recorded in audit.erasure_requests: "
        f"{sum(result['rows_deleted'].values())} rows deleted, "
        f"{len(result['exports_removed'])} export folders removed."
    )
    print(json.dumps(result["rows_deleted"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
