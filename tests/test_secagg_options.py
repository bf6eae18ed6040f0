"""Secure aggregation's cohort limit, refused before a run starts (a round with more devices
than one cohort holds could never mask: the model would silently never change)."""

from __future__ import annotations


def test_cohort_limit_is_the_runtimes():
    from fltiny.experiment import SECAGG_MAX_COHORT
    from fltiny.native import lib as L

    assert SECAGG_MAX_COHORT == L.const("FLT_SECAGG_MAX_COHORT")


def test_more_devices_per_round_than_a_cohort_is_refused(cli, tmp_path):
    code, out, err = cli("simulate", "--clients", "20", "--rounds", "1", "--secagg",
                         "--strategy", "fedavg", "--out", str(tmp_path / "x"))
    text = out + err
    assert code != 0 and "at most 16" in text and "Traceback" not in text
    code, out, err = cli("run", "--fleet", "qemu-m4f=17", "--rounds", "1", "--secagg",
                         "--strategy", "fedavg", "--out", str(tmp_path / "y"))
    text = out + err
    assert code != 0 and "at most 16" in text and "Traceback" not in text
