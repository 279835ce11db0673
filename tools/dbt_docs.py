"""Build dbt's documentation site as one offline page: ``python -m tools.dbt_docs --as-of D``.

``make docs`` runs it after ``make run``: ``dbt docs generate --static`` writes
``<data dir>/dbt/docs/static_index.html``, which opens from the file system with no server.
"""

from __future__ import annotations

import argparse
import logging
import sys
from datetime import date

from transform.dbt_build import DbtBuildError, generate_dbt_docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--as-of", type=date.fromisoformat, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    print("Generating dbt docs (parsing the project, reading the catalog) ...", flush=True)
    try:
        page = generate_dbt_docs(args.as_of)
    except DbtBuildError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"dbt docs: {page.as_uri()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
