"""python3 -m conformance ... (the same as build/bin/mana-conformance)."""
import sys

from conformance.runner import main

sys.exit(main())
