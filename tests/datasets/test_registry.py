import subprocess
import sys

import pytest

import marketpilot.datasets as datasets
from marketpilot.datasets import DatasetNotInstalled, PackageSource, package_dir
from marketpilot.datasets._package import locate

NAMES = ("movielens-100k", "obd", "ulb-creditcard", "dominicks-oj", "cdnow")


def test_registry_lists_the_five_datasets():
    assert datasets.available() == NAMES
    for name in NAMES:
        assert datasets.info(name).install


def test_registry_reports_every_dataset_installed_here():
    # CI runs `make datasets` first: a missing dataset must fail, never skip.
    for name in NAMES:
        datasets.check_installed(name)
        assert datasets.is_installed(name)


def test_registry_loads_by_name():
    ml = datasets.load("movielens-100k")
    assert len(ml.interactions) == 100_000
    cd = datasets.load("cdnow")
    assert len(cd) == 69_659


def test_registry_rejects_an_unknown_name():
    with pytest.raises(KeyError, match="movielens-100k"):
        datasets.load("netflix-prize")


def test_missing_package_error_names_the_pip_command():
    source = PackageSource("movielens-100k", "marketpilot_no_such_package", "recbole==1.2.1", "dataset_example")
    with pytest.raises(DatasetNotInstalled) as err:
        locate(source)
    assert err.value.install == "pip install --no-deps recbole==1.2.1"
    assert "`pip install --no-deps recbole==1.2.1`" in str(err.value)
    assert "make datasets" in str(err.value)


def test_wrong_package_version_missing_a_file_is_reported_as_not_installed():
    source = PackageSource("cdnow", "lifetimes", "Lifetimes==0.11.3", "datasets")
    with pytest.raises(DatasetNotInstalled, match="no_such_file.txt"):
        locate(source, "no_such_file.txt")


def test_package_dir_does_not_import_the_package():
    code = ("import sys; from marketpilot.datasets import package_dir; "
            "assert package_dir('recbole') is not None and package_dir('lifetimes') is not None; "
            "assert package_dir('marketpilot_no_such_package') is None; "
            "assert not {'recbole', 'lifetimes', 'obp', 'fraud_analysis'} & set(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_package_dir_refuses_dotted_names():
    with pytest.raises(ValueError):
        package_dir("obp.dataset")
