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


def test_a_device_whose_reply_the_server_refuses_drops_out_and_the_round_decodes():
    """The bridge's masked round (fltiny.bridge.secagg) over C clients (the runtime's
    secagg/client.c, host build): one device's ADVERTISE is garbage; it leaves the round like a
    dropout and the others' sum still decodes to their exact mean."""
    import numpy as np

    from fltiny.bridge.secagg import BridgeSecAgg
    from fltiny.native import secagg as sa
    from fltiny.native.messages import SecaggKind

    n_params, k = 64, 16
    devs = {d: sa.SecAggDevice(d) for d in (1, 2, 3, 4, 5)}
    rng = np.random.default_rng(0)
    deltas = {d: rng.normal(0, 0.01, n_params).astype(np.float32) for d in devs}
    q_of: dict[int, np.ndarray] = {}

    def ask(d: int, kind: SecaggKind, body: bytes) -> bytes:
        dev = devs[d]
        if kind == SecaggKind.BEGIN:
            adv = dev.begin(body)
            return adv[:-1] if d == 3 else adv  # device 3: a truncated ADVERTISE
        if kind == SecaggKind.COHORT:
            return dev.cohort(body)
        if kind == SecaggKind.SHARES:
            dev.receive(body)
            p = dev.params()
            idx = sa.index_set(int(p["index_seed"]), int(p["round"]), n_params, int(p["k"]))
            q_of[d] = sa.quantize(deltas[d], idx, float(p["scale"]), int(p["qmax"]))
            return dev.masked(q_of[d])
        return dev.unmask(body)

    sec = BridgeSecAgg(n_params=n_params, k=k, clip=0.05)
    ss = sec.round(1, sorted(devs), ask, {})
    assert 3 in sec.failures and "ADVERTISE" in sec.failures[3]
    assert sorted(ss.devices) == [1, 2, 4, 5]
    srv = sec.server
    idx = srv.index
    expect = np.zeros(n_params)
    total = sum(q_of[d].astype(np.int64) for d in ss.devices)
    signed = ((total + 2**(srv.w - 1)) % 2**srv.w) - 2**(srv.w - 1)  # the w-bit sum, signed
    expect[idx] = signed / (srv.scale * len(ss.devices))
    np.testing.assert_allclose(ss.mean, expect.astype(np.float32), rtol=1e-6, atol=1e-9)


def test_secagg_is_compiled_in_where_it_fits():
    from fltiny.boards import get_board
    from fltiny.build.project import secagg_fits, secagg_ram_bytes

    assert secagg_ram_bytes(1030) == 3048 + 12 * 1030 + 13  # har-tiny's tail: ~15 kB
    assert secagg_fits(get_board("qemu-m4f"), 1030) and secagg_fits(get_board("qemu-rv32"), 1030)
    assert not secagg_fits(get_board("qemu-m3"), 1030)  # 64 kB boards never
    assert not secagg_fits(get_board("qemu-rv32"), 6406)  # har-small's tail: 80 kB of 400
    assert secagg_fits(get_board("qemu-m4f"))  # the board alone (the run's early check)
