"""A retraining process for `test_retrain_recovery.py`: it is started, killed and restarted.

    retrain_worker.py MODEL CAUSE MARKERS [--start] [--trainer good|shuffled] [--block train|register]

Settings come from ``MARKETPILOT_HOME`` and ``MARKETPILOT_DATABASE_URL``. It launches DBOS
with a fixed executor id, so a restarted process resumes the run a killed one left behind.
With `--start` it starts run ``retrain:MODEL:manual:CAUSE``; without, it only waits for that
run (which DBOS resumed at launch). It prints the decision as JSON.

Markers written to MARKERS: ``train-*`` each time the trainer trains, ``register-*`` each
time a version is created in the registry. `--block train` waits forever inside the train
step; `--block register` waits forever right after the version is created, before the step
is recorded as done: the worst moment to die for exactly-once registration.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from retrain_support import ShuffledClickTrainer, SignallingTrainer, mark

from marketpilot.platform.config import load_settings
from marketpilot.platform.models import retraining_engine
from marketpilot.platform.models.records import ModelVersion
from marketpilot.platform.models.registry import ModelRegistry
from marketpilot.platform.models.retraining import RetrainPolicy, RetrainRequest, retrain_workflow
from marketpilot.platform.models.retraining_click import ClickTrainer
from marketpilot.platform.models.training import register_trainer

EXECUTOR_ID = "test-recovery"
MARGIN = 0.01


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("cause")
    parser.add_argument("markers", type=Path)
    parser.add_argument("--start", action="store_true")
    parser.add_argument("--trainer", choices=("good", "shuffled"), default="shuffled")
    parser.add_argument("--block", choices=("train", "register"), default=None)
    args = parser.parse_args()

    inner = ShuffledClickTrainer(name=args.model) if args.trainer == "shuffled" else ClickTrainer(name=args.model)
    register_trainer(SignallingTrainer(inner, args.markers, block=args.block == "train"), replace=True)
    _signal_registrations(args.markers, block=args.block == "register")

    from dbos import DBOS, SetWorkflowID

    request = RetrainRequest(model=args.model, cause=args.cause, policy=RetrainPolicy(margin=MARGIN))
    retraining_engine.launch(load_settings(), executor_id=EXECUTOR_ID, polling_interval=0.1)
    try:
        if args.start:
            with SetWorkflowID(request.workflow_id):
                decision = retrain_workflow(request)
        else:
            decision = DBOS.retrieve_workflow(request.workflow_id).get_result()
        print(json.dumps(decision.to_dict()))
    finally:
        retraining_engine.shutdown()


def _signal_registrations(markers: Path, *, block: bool) -> None:
    """Mark every version the real registry creates, and optionally stop dead right after."""
    original = ModelRegistry.log_training_run

    def log_training_run(self: ModelRegistry, name: str, **kwargs: Any) -> ModelVersion:
        version = original(self, name, **kwargs)
        mark(markers, "register")
        while block:
            time.sleep(0.05)
        return version

    ModelRegistry.log_training_run = log_training_run  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
