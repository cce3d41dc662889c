"""Allow ``python -m genesys_prov``."""

from genesys_prov.cli import main

main()
