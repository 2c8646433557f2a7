"""Warehouse equipment: sensor streams with degradation before failures (predictive maintenance).

Each machine (conveyor, sorter, label printer) reports temperature, vibration and motor
current every `sensor_interval_minutes`. Failures follow a renewal process: operating time
between repairs is Weibull (wear-out, shape > 1) around the machine type's mean time between
failures. Before each failure the machine degrades for 12-72 hours; its health h rises from 0
to 1 as ((t - degradation_start) / (failed_at - degradation_start))^2 and each failure mode
moves the signals in its own way (bearing wear: vibration; overheating: temperature; motor
fault: current). While down (until repaired_at) the machine reports idle readings with
status 'down'. Ground truth: ground_truth/machines.csv, failures.csv and the stream itself,
sensors.csv (these are not import files; they live under ground_truth/).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from marketpilot.simulate.config import SimulationConfig
from marketpilot.simulate.geography import Geography
from marketpilot.simulate.identifiers import entity_ids
from marketpilot.simulate.output import iso_times, take

# type -> (temperature C, vibration mm/s, current A, mean days between failures)
MACHINE_TYPES: dict[str, tuple[float, float, float, float]] = {
    "conveyor": (38.0, 2.2, 11.0, 20.0),
    "sorter": (42.0, 3.0, 16.0, 25.0),
    "label_printer": (31.0, 0.8, 2.5, 15.0),
}
# mode -> (added temperature, vibration factor, current factor) at full degradation
FAILURE_MODES: dict[str, tuple[float, float, float]] = {
    "bearing_wear": (4.0, 3.0, 0.05),
    "overheating": (15.0, 0.3, 0.10),
    "motor_fault": (6.0, 0.8, 0.40),
}
SENSOR_SCHEMA = pa.schema(
    [(name, pa.string()) for name in ("machine_id", "machine_type", "region", "timestamp", "status")]
    + [(name, pa.float64()) for name in ("temperature_c", "vibration_mm_s", "current_a")])
WEIBULL_SHAPE = 1.8
DEGRADATION_HOURS = (12.0, 72.0)
DOWNTIME_HOURS = (2.0, 12.0)


def machine_table(rng: np.random.Generator, config: SimulationConfig, geo: Geography
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(type index, region index) per machine."""
    types = rng.integers(0, len(MACHINE_TYPES), config.machines)
    regions = rng.choice(geo.n_regions, config.machines, p=geo.buyer_share)
    return types, regions


def failure_schedule(rng: np.random.Generator, config: SimulationConfig, types: np.ndarray
                     ) -> list[tuple[int, int, int, int, int]]:
    """(machine, mode, degradation_start, failed_at, repaired_at) of failures touching the window."""
    failures = []
    modes = len(FAILURE_MODES)
    for m, t in enumerate(types):
        mtbf = list(MACHINE_TYPES.values())[t][3] * 86_400
        scale = mtbf / 0.889  # Weibull mean = scale * Gamma(1 + 1/1.8) ~ 0.889 * scale
        repaired = config.start_epoch - int(rng.uniform(0, mtbf))  # machines start at random ages
        while repaired < config.end_epoch:
            run = max(DEGRADATION_HOURS[1] * 3_600, scale * rng.weibull(WEIBULL_SHAPE))
            failed = repaired + int(run)
            degradation = failed - int(rng.uniform(*DEGRADATION_HOURS) * 3_600)
            next_repair = failed + int(rng.uniform(*DOWNTIME_HOURS) * 3_600)
            if next_repair > config.start_epoch and degradation < config.end_epoch:
                failures.append((m, int(rng.integers(0, modes)), degradation, failed, next_repair))
            repaired = next_repair
    return failures


def sensor_chunks(rng: np.random.Generator, config: SimulationConfig, geo: Geography, types: np.ndarray,
                  regions: np.ndarray, failures: list[tuple[int, int, int, int, int]]
                  ) -> Iterator[dict[str, object]]:
    """sensors.csv rows, one machine at a time."""
    step = config.sensor_interval_minutes * 60
    times = np.arange(config.start_epoch, config.end_epoch, step, dtype=np.int64)
    n = len(times)
    hour = (times % 86_400) / 3_600
    type_params = list(MACHINE_TYPES.values())
    mode_params = list(FAILURE_MODES.values())
    for m in range(len(types)):
        temp0, vib0, cur0, _ = type_params[types[m]]
        d_temp, d_vib, d_cur = np.zeros(n), np.zeros(n), np.zeros(n)
        down = np.zeros(n, dtype=bool)
        for machine, mode, start, failed, repaired in failures:
            if machine != m:
                continue
            degrading = (times >= start) & (times < failed)
            h = ((times[degrading] - start) / (failed - start)) ** 2
            t_add, v_fac, c_fac = mode_params[mode]
            d_temp[degrading] = t_add * h
            d_vib[degrading] = (v_fac - 1.0) * h
            d_cur[degrading] = c_fac * h
            down |= (times >= failed) & (times < repaired)
        ambient = 2.0 * np.sin(2 * np.pi * (hour - 9) / 24)
        temperature = temp0 + ambient + d_temp + rng.normal(0, 0.6, n)
        vibration = np.maximum(0.0, vib0 * (1 + d_vib) + rng.normal(0, 0.08 * vib0, n))
        current = np.maximum(0.0, cur0 * (1 + d_cur) + rng.normal(0, 0.03 * cur0, n))
        temperature = np.where(down, 22.0 + ambient + rng.normal(0, 0.3, n), temperature)
        vibration = np.where(down, np.abs(rng.normal(0, 0.02, n)), vibration)
        current = np.where(down, np.abs(rng.normal(0, 0.05, n)), current)
        yield {
            "machine_id": entity_ids("machine", np.full(n, m)),
            "machine_type": take(tuple(MACHINE_TYPES), np.full(n, types[m])),
            "region": take(geo.codes, np.full(n, regions[m])),
            "timestamp": iso_times(times),
            "status": take(("running", "down"), down.astype(np.int64)),
            "temperature_c": np.round(temperature, 2),
            "vibration_mm_s": np.round(vibration, 3),
            "current_a": np.round(current, 3),
        }


def failure_rows(failures: list[tuple[int, int, int, int, int]]) -> dict[str, object]:
    arr = np.array(failures, dtype=np.int64).reshape(-1, 5)
    return {
        "failure_id": entity_ids("failure", np.arange(len(arr))),
        "machine_id": entity_ids("machine", arr[:, 0]),
        "failure_mode": take(tuple(FAILURE_MODES), arr[:, 1]),
        "degradation_start": iso_times(arr[:, 2]),
        "failed_at": iso_times(arr[:, 3]),
        "repaired_at": iso_times(arr[:, 4]),
    }
