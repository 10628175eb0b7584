"""Output staging and destinations: private directory, exclusive 0600 files, no symlink is ever
followed, an existing guest is never replaced unless forced, abort leaves nothing; the per-disk
record through bus assignment; free-space checks only for file destinations; copy argv."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from v2v_helpers import assert_one_line_error, run_v2v

from pyv2v.errors import InternalError, V2VError
from pyv2v.v2v import cli
from pyv2v.v2v.convert.linux.devices import DeviceMapper
from pyv2v.v2v.copy import CopyOptions, convert_argv
from pyv2v.v2v.outputs import OutputOptions, get
from pyv2v.v2v.outputs.base import CopyTarget, Destination
from pyv2v.v2v.outputs.staging import Staging
from pyv2v.v2v.pipeline import assign_targets, check_output_space
from pyv2v.v2v.types import Disk, GuestCaps, Source, SourceDisk

SRC = Source(name="g", hypervisor="physical", memory=1024**3, vcpus=1,
             disks=(SourceDisk(0, "/src/a", "raw", size=10), SourceDisk(1, "/src/b", "raw",
                                                                         size=20)))


def mode(p: Path | str) -> int:
    return stat.S_IMODE(os.lstat(p).st_mode)


def test_staging_private_dir_modes_commit_and_abort(tmp_path: Path) -> None:
    s = Staging(str(tmp_path), "x")
    assert os.path.dirname(s.dir) == str(tmp_path) and mode(s.dir) == 0o700
    assert os.path.basename(s.dir).startswith(".x-") and s.dir.endswith(".pyv2v-partial")
    staged = s.write_text(str(tmp_path / "x.xml"), "data")
    assert not (tmp_path / "x.xml").exists() and mode(staged) == 0o600
    s.commit()
    assert (tmp_path / "x.xml").read_text() == "data" and mode(tmp_path / "x.xml") == 0o600
    assert os.listdir(tmp_path) == ["x.xml"]
    s2 = Staging(str(tmp_path), "y")
    s2.write_text(str(tmp_path / "y.xml"), "partial")
    s2.abort()
    assert sorted(os.listdir(tmp_path)) == ["x.xml"]


def test_planted_symlink_at_the_old_staging_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    for old in (".g-sda.pyv2v-partial", ".g.xml.pyv2v-partial"):
        os.symlink(victim, out / old)
    target = get("local", OutputOptions(storage=str(out))).setup("g", SRC)
    target.files.write_text(str(out / "g.xml"), "<domain/>")  # type: ignore[union-attr]
    target.commit()
    assert victim.read_text() == "precious"
    assert (out / "g.xml").read_text() == "<domain/>" and not (out / "g.xml").is_symlink()
    assert mode(out / "g-sda") == 0o600 and not (out / "g-sda").is_symlink()


def test_existing_guest_is_refused_and_untouched(tmp_path: Path) -> None:
    (tmp_path / "g-sdb").write_text("someone's disk")
    out = get("local", OutputOptions(storage=str(tmp_path)))
    with pytest.raises(V2VError, match=r"guest g already exists .*g-sdb.*--overwrite"):
        out.setup("g", SRC)
    assert os.listdir(tmp_path) == ["g-sdb"]  # no staging directory left behind
    os.symlink("/nonexistent", tmp_path / "g.xml")  # a dangling symlink counts too
    (tmp_path / "g-sdb").unlink()
    with pytest.raises(V2VError, match="already exists"):
        out.setup("g", SRC)


def test_guest_appearing_during_the_run_is_not_replaced(tmp_path: Path) -> None:
    target = get("local", OutputOptions(storage=str(tmp_path))).setup("g", SRC)
    target.files.write_text(str(tmp_path / "g.xml"), "mine")  # type: ignore[union-attr]
    victim = tmp_path / "elsewhere"
    victim.write_text("precious")
    os.symlink(victim, tmp_path / "g.xml")  # planted after the check, before the commit
    with pytest.raises(V2VError, match="appeared while converting"):
        target.commit()
    target.abort()
    assert victim.read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "g.xml"]  # our disks were removed


def test_overwrite_replaces_names_never_symlink_targets(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    out = tmp_path / "out"
    out.mkdir()
    os.symlink(victim, out / "g-sda")
    (out / "g.xml").write_text("old")
    o = get("local", OutputOptions(storage=str(out), overwrite=True))
    target = o.setup("g", SRC)
    target.files.write_text(str(out / "g.xml"), "new")  # type: ignore[union-attr]
    target.commit()
    assert victim.read_text() == "precious" and not (out / "g-sda").is_symlink()
    assert (out / "g.xml").read_text() == "new"
    assert sorted(os.listdir(out)) == ["g-sda", "g-sdb", "g.xml"]


class RemoteDestination(Destination):
    """Not a file (like an NBD endpoint): no directory to check for free space."""

    def __init__(self) -> None:
        super().__init__("nbd://example:10809", "raw")

    def copy_target(self, size: int) -> CopyTarget:
        return CopyTarget(self.location, self.format, create=False)

    def commit(self) -> None:
        pass

    def abort(self) -> None:
        pass


def test_free_space_checked_only_for_file_destinations(tmp_path: Path) -> None:
    remote = (Disk(SRC.disks[0], "/ov0", RemoteDestination()),)
    check_output_space(remote, 1 << 60)  # nothing to check: no dirname() of a URI
    target = get("local", OutputOptions(storage=str(tmp_path))).setup("g", SRC)
    files = tuple(Disk(s, f"/ov{s.index}", d) for s, d in zip(SRC.disks, target.disks, strict=True))
    check_output_space(files, 1)
    with pytest.raises(V2VError, match=f"not enough free space in {tmp_path} "):
        check_output_space(files + remote, 1 << 60)
    target.abort()


def test_assign_targets_uses_the_converters_device_names(tmp_path: Path) -> None:
    target = get("json", OutputOptions(storage=str(tmp_path), format="qcow2")).setup("g", SRC)
    disks = tuple(Disk(s, f"/ov{s.index}", d) for s, d in zip(SRC.disks, target.disks, strict=True))
    caps = GuestCaps("virtio-scsi", "virtio-net", "vga", "pc", "x86_64", "bios",
                     target_devs=DeviceMapper("virtio-scsi").target_devs(2))
    out = assign_targets(disks, caps)
    assert [(d.target.path, d.target.format, d.target.target_dev, d.target.size)  # type: ignore[union-attr]
            for d in out] == [(str(tmp_path / "g-sda"), "qcow2", "sda", 10),
                              (str(tmp_path / "g-sdb"), "qcow2", "sdb", 20)]
    with pytest.raises(InternalError, match="named 1 target disks for 2"):
        assign_targets(disks, GuestCaps("virtio-blk", "virtio-net", "vga", "pc", "x86_64",
                                        "bios", target_devs=("vda",)))
    target.abort()
    assert os.listdir(tmp_path) == []


def test_device_mapper_records_what_it_writes() -> None:
    m = DeviceMapper("virtio-blk")
    assert m.rewrite("/dev/sdb1 /boot") == "/dev/vdb1 /boot"
    assert m.target_devs(3) == ("vda", "vdb", "vdc")


def test_copy_argv_for_files_and_existing_destinations() -> None:
    file_argv = convert_argv("/ov", CopyTarget("/stage/g-sda", "qcow2"),
                             CopyOptions(preallocated=True, rate_limit=100))
    assert file_argv[-2:] == ["/ov", "/stage/g-sda"] and "-n" not in file_argv
    assert "preallocation=metadata,compat=1.1" in file_argv and "100" in file_argv
    nbd_argv = convert_argv("/ov", CopyTarget("nbd://127.0.0.1:1234", "raw", create=False),
                            CopyOptions(preallocated=True))
    assert "-n" in nbd_argv and "-o" not in nbd_argv and nbd_argv[-1] == "nbd://127.0.0.1:1234"


def test_compressed_copy_and_its_checks(tmp_path: Path) -> None:
    argv = convert_argv("/ov", CopyTarget("/stage/g-sda", "qcow2"), CopyOptions(compressed=True))
    assert "-c" in argv and argv[-2:] == ["/ov", "/stage/g-sda"]
    assert "-c" not in convert_argv("/ov", CopyTarget("/stage/g-sda", "qcow2"))
    with pytest.raises(InternalError):
        convert_argv("/ov", CopyTarget("/stage/g-sda", "raw"), CopyOptions(compressed=True))
    for mode in ("local", "qemu", "json", "kubevirt"):
        out = get(mode, OutputOptions(storage=str(tmp_path), format="qcow2",
                                      options={"compressed": ""}))
        out.precheck()
        assert out.compressed  # type: ignore[attr-defined]
        raw = get(mode, OutputOptions(storage=str(tmp_path), options={"compressed": ""}))
        with pytest.raises(V2VError, match="-oo compressed needs -of qcow2"):
            raw.precheck()
    with pytest.raises(V2VError, match="unknown -oo option compressed"):
        get("null", OutputOptions(options={"compressed": ""})).precheck()
    plan = cli.make_plan(cli.parse(["-i", "disk", "/g.img", "-o", "local", "-os", str(tmp_path),
                                    "-of", "qcow2", "--compressed"]))
    assert plan.output_opts.options == {"compressed": ""}


def test_null_output_copies_to_nowhere() -> None:
    target = get("null", OutputOptions()).setup("g", SRC)
    assert target.files is None and len(target.disks) == 2
    ct = target.disks[0].copy_target(10)
    assert ct.uri.startswith("json:") and '"null-co"' in ct.uri and not ct.create


def test_cli_refuses_an_existing_guest_before_any_work(tmp_path: Path) -> None:
    img = tmp_path / "g.img"
    img.write_bytes(bytes(1024**2))
    out = tmp_path / "out"
    out.mkdir()
    (out / "g.xml").write_text("<domain/>")
    res = run_v2v("-i", "disk", str(img), "-o", "local", "-os", str(out), timeout=60)
    assert_one_line_error(res, "guest g already exists", "--overwrite")
    assert "Opening the source" not in res.stdout
    assert os.listdir(out) == ["g.xml"]


def test_cli_overwrite_option() -> None:
    parse = cli.build_parser().parse_args
    assert cli.make_plan(parse(["-i", "disk", "x", "-o", "null", "--overwrite"])
                         ).output_opts.overwrite
    assert not cli.make_plan(parse(["-i", "disk", "x", "-o", "null"])).output_opts.overwrite
    assert "--overwrite" in cli.build_parser().format_help()
