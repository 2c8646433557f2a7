"""Measurement: off-policy evaluation (``ope``), guarded experiments (``experiments``) and
geographic holdouts (``holdout``).

Every number a recommendation change is judged by comes from here, so the three parts share
one habit: an estimate always travels with its uncertainty (bootstrap interval, always-valid
sequential bound, difference-in-differences interval), never as a bare point.
"""
