"""Lets ``pytest examples/dbench-randproj/tests`` import the plugin without installing it.

The entry-point test needs it installed (``pip install examples/dbench-randproj``): dbench
finds plugins through their installed metadata, never through ``sys.path`` alone.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
