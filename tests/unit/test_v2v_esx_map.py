"""esx_map: the -ic URI, the datacenter path, datastore paths → HTTPS URLs, VMDK descriptors."""

from __future__ import annotations

import pytest
from lxml import etree

from pyv2v.errors import V2VError
from pyv2v.v2v.inputs import esx_map

DESC = b"""# Disk DescriptorFile
version=1
CID=fffffffe
parentCID=ffffffff
createType="%s"

# Extent description
RW 41943040 VMFS "%s"

ddb.adapterType = "lsilogic"
"""


def test_parse_uri() -> None:
    u = esx_map.parse_uri("esx://root@esxi.example.com?no_verify=1")
    assert (u.scheme, u.server, u.port, u.user, u.no_verify) == (
        "esx",
        "esxi.example.com",
        None,
        "root",
        True,
    )
    assert u.https_base == "https://esxi.example.com"
    v = esx_map.parse_uri("vpx://administrator%40vsphere.local@vc:8443/Data%20center/esxi1")
    assert (v.user, v.path, v.no_verify, v.https_base) == (
        "administrator@vsphere.local",
        "/Data center/esxi1",
        False,
        "https://vc:8443",
    )
    for bad, needle in [
        ("esx://esxi.example.com/", "user name"),
        ("esx://root:pw@esxi/", "passwords in the URI"),
        ("vpx://root@vc/OnlyDC", "datacenter and the ESXi host"),
        ("esx://root@esxi:99999/", "bad port"),
        ("qemu:///system", "not an esx"),
    ]:
        with pytest.raises(V2VError, match=needle):
            esx_map.parse_uri(bad)


def test_datacenter_path() -> None:
    xml = etree.fromstring(
        "<domain type='vmware' xmlns:vmware='http://libvirt.org/schemas/domain/vmware/1.0'>"
        "<vmware:datacenterpath>Folder/DC1</vmware:datacenterpath></domain>"
    )
    vpx = esx_map.parse_uri("vpx://root@vc/Folder/DC1/cluster/esxi1")
    assert esx_map.datacenter_path(vpx, xml) == "Folder/DC1"  # the XML wins
    bare = etree.fromstring("<domain type='vmware'/>")
    assert esx_map.datacenter_path(esx_map.parse_uri("esx://root@h/"), bare) == "ha-datacenter"
    assert esx_map.datacenter_path(esx_map.parse_uri("vpx://root@vc/DC1/esxi1"), bare) == "DC1"


def test_datastore_file_and_url() -> None:
    ds, path = esx_map.datastore_file("[datastore 1] Fedora 20/Fedora 20.vmdk", "d")
    assert (ds, path) == ("datastore 1", "Fedora 20/Fedora 20.vmdk")
    uri = esx_map.parse_uri("esx://root@esxi:444/?no_verify=1")
    assert esx_map.file_url(uri, "ha-datacenter", ds, "Fedora 20/Fedora 20-flat.vmdk") == (
        "https://esxi:444/folder/Fedora%2020/Fedora%2020-flat.vmdk"
        "?dcPath=ha-datacenter&dsName=datastore%201"
    )
    for bad in (
        "/vmfs/volumes/x.vmdk",
        "[ds] ../../etc/x.vmdk",
        "[ds] a/./b.vmdk",
        "[ds] /abs.vmdk",
        "[ds] disk.img",
    ):
        with pytest.raises(V2VError):
            esx_map.datastore_file(bad, "d")


def test_flat_extent() -> None:
    assert esx_map.flat_extent(DESC % (b"vmfs", b"g-flat.vmdk"), "g/g.vmdk", "x") == "g/g-flat.vmdk"
    with pytest.raises(V2VError, match="snapshot"):
        esx_map.flat_extent(DESC % (b"vmfsSparse", b"g-000001-delta.vmdk"), "g/g.vmdk", "x")
    with pytest.raises(V2VError, match="same folder"):
        esx_map.flat_extent(DESC % (b"vmfs", b"../other/g-flat.vmdk"), "g/g.vmdk", "x")
    with pytest.raises(V2VError, match="not a VMDK descriptor"):
        esx_map.flat_extent(b"KDMV\x01\x00\x00\x00", "g/g.vmdk", "x")


def test_set_nbd_socket() -> None:
    disk = etree.fromstring(
        "<disk type='file' device='disk'><source file='[ds] g/g.vmdk'/>"
        "<target dev='sda' bus='scsi'/></disk>"
    )
    esx_map.set_nbd_socket(disk, "/run/x/disk0.sock")
    assert disk.get("type") == "network"
    assert disk.find("source").get("protocol") == "nbd"  # type: ignore[union-attr]
    assert disk.find("source/host").get("socket") == "/run/x/disk0.sock"  # type: ignore[union-attr]
    assert disk.find("driver").get("type") == "raw"  # type: ignore[union-attr]
    assert disk.find("target").get("dev") == "sda"  # type: ignore[union-attr]


def test_curl_config_quotes_the_password() -> None:
    uri = esx_map.parse_uri("esx://root@esxi/?no_verify=1")
    text = esx_map.curl_config(uri, 'a"b\\c', "https://esxi/folder/x?dcPath=d&dsName=s")
    assert 'user = "root:a\\"b\\\\c"' in text.splitlines()
    assert "insecure" in text.splitlines() and 'proto = "=https"' in text
    assert esx_map.cookie_script("/tmp/x y/curl0.conf").startswith(
        "#!/bin/sh -\ncurl -K '/tmp/x y/curl0.conf' | sed"
    )
