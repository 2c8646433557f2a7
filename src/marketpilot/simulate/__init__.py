"""A seeded synthetic marketplace with known ground truth.

    from marketpilot.simulate import SimulationConfig, simulate
    summary = simulate(SimulationConfig(listings=10_000, users=5_000, days=30, seed=7), out=Path("out"))

writes, in the import schema of `marketpilot.dataimport.schemas`, `sellers.csv`,
`listings.csv`, `users.csv`, `interactions.csv`, `orders.csv`, `transactions.csv`,
`sales.csv` and `shipments.csv`, plus `ground_truth/` (documented in
`marketpilot.simulate.groundtruth`, which also becomes `ground_truth/README.md`) and
`manifest.json`. The same config gives byte-identical files.
"""

from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.engine import Progress, SimulationSummary, simulate

__all__ = ["Progress", "SimulationConfig", "SimulationSummary", "simulate"]
