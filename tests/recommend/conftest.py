"""Test modules here import shared helpers (`planted`, the service stand-ins) by module name."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
