"""Bad input everywhere: one sweep over every CLI command of named invalid inputs (files that
are not what they claim, missing or truncated bundles and stores, out-of-range options, unknown
names, unwritable outputs, ports that do not exist), through the real executable. Each must end
with exactly one ``error:`` line that names the problem, a non-zero exit, no traceback, no
"internal error", and nothing written where the command was refused."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FLTINY = [sys.executable, "-m", "fltiny.cli"]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-input")
    notjson = root / "not-json.toml"
    notjson.write_text("this is = = not toml\n")
    blob = root / "garbage.bin"
    blob.write_bytes(b"\x00garbage")
    empty = root / "empty"
    empty.mkdir()
    truncated = root / "truncated-bundle"
    truncated.mkdir()
    (truncated / "manifest.json").write_text('{"format": ')
    fakestore = root / "fake-store"
    fakestore.mkdir()
    (fakestore / "run.sqlite").write_bytes(b"not a database at all" * 10)
    return {"root": root, "notjson": notjson, "blob": blob, "empty": empty,
            "truncated": truncated, "fakestore": fakestore,
            "unwritable": blob / "out"}  # a path below a regular file: no one can write it


# (command, arguments with {placeholders}, words the one error line must contain, a path that
# must not exist afterwards or None)
CASES = [
    ("audit", "--run {empty}", ["no run store"], None),
    ("audit", "--run {fakestore}", ["not a usable run store"], None),
    ("boards", "--bogus", ["no such option"], None),
    ("broker", "stop --dir {empty}", ["no broker is running"], None),
    ("broker", "start --dir {unwritable}", ["cannot write"], None),
    ("build", "--board nosuchboard", ["unknown board 'nosuchboard'"], None),
    ("build", "--board qemu-m4f --bundle {empty}", ["not an export bundle"], None),
    ("build", "--board qemu-m4f --bundle {truncated}", ["manifest"], None),
    ("build", "--board qemu-m4f --key zz", ["--key", "64 hex digits"], None),
    ("build", "--board qemu-m4f --device-id -1", ["--device-id"], None),
    ("build", "--board qemu-m4f --sensor {root}/missing.c", ["--sensor", "does not exist"], None),
    ("build", "--board qemu-m4f --wifi-port 70000", ["--wifi-port"], None),
    ("codegen", "{blob}", ["not an export bundle"], None),
    ("codegen", "{truncated}", ["manifest"], None),
    ("ctl", "--run {empty} rollback 3", ["no run store"], None),
    ("ctl", "--run {empty} bogus 1", ["'bogus' is not one of"], None),
    ("dashboard", "--run {empty}", ["no run store"], None),
    ("datasets", "--bogus", ["no such option"], None),
    ("emulate", "--board nosuchboard", ["unknown board"], None),
    ("export", "--model nosuchmodel --out {root}/e1", ["unknown zoo model"], "{root}/e1"),
    ("export", "--model har-tiny --dataset nosuch --out {root}/e2", ["unknown dataset"],
     "{root}/e2"),
    ("export", "--model har-tiny --out {unwritable}", ["cannot write to output directory"], None),
    ("flash", "--board nosuchboard", ["unknown board"], None),
    ("models", "--bogus", ["no such option"], None),
    ("run", "--board nosuchboard", ["unknown board"], None),
    ("run", "--port /dev/fltiny-no-such-port --rounds 1", ["does not exist"], None),
    ("run", "--fleet-file {notjson}", ["not valid TOML"], None),
    ("run", "--fleet qemu-m4f=x", ["--fleet", "integer"], None),
    ("run", "--transport carrier-pigeon", ["--transport"], None),
    ("run", "--rounds 0", ["--rounds"], None),
    ("run", "--board native --devices 1 --rounds 1 --out {unwritable}",
     ["cannot write to output directory"], None),
    ("simulate", "--clients 0", ["--clients"], None),
    ("simulate", "--dataset nosuch", ["--dataset"], None),
    ("simulate", "--bundle {blob}", ["not an export bundle"], None),
    ("simulate", "--bundle {truncated}", ["manifest"], None),
    ("simulate", "--clients 2 --rounds 1 --out {unwritable}",
     ["cannot write to output directory"], None),
    ("simulate", "--dp-noise 1", ["--dp-clip"], None),
    ("simulate", "--topk 2", ["--topk"], None),
    ("simulate", "--byzantine 1.5 --attack noise", ["--byzantine"], None),
    ("simulate", "--byzantine 0.2 --attack nosuch", ["--attack"], None),
    ("train", "--model nosuchmodel --out {root}/t1", ["unknown zoo model"], "{root}/t1"),
    ("train", "--model har-tiny --epochs 0 --out {root}/t2", ["--epochs"], "{root}/t2"),
]


def test_every_command_is_swept():
    from fltiny.cli import main

    assert set(main.commands) <= {c for c, *_ in CASES}, set(main.commands) - {c for c, *_ in CASES}


@pytest.mark.parametrize("command,args,words,absent", CASES,
                         ids=[f"{c}-{i}" for i, (c, *_r) in enumerate(CASES)])
def test_bad_input_is_one_named_line(files, command, args, words, absent):
    argv = [command, *args.format(**files).split()]
    env = {**os.environ, "FLTINY_BUILD_DIR": str(files["root"] / "build")}
    done = subprocess.run([*FLTINY, *argv], capture_output=True, text=True, timeout=300, env=env)
    err = done.stderr
    assert done.returncode != 0, (argv, done.stdout, err)
    assert "Traceback" not in err and "internal error" not in err, err
    errors = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, err
    for w in words:
        assert w in errors[0], (w, errors[0])
    if absent is not None:
        assert not Path(absent.format(**files)).exists()
