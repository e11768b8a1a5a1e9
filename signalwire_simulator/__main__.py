"""``python -m signalwire_simulator``: run the simulator until interrupted."""

import sys

from signalwire_simulator.cli import main

sys.exit(main())
