"""`python -m status` → cli.main()."""

from status.cli import main

raise SystemExit(main())
