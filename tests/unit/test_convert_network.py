"""NIC name pinning and configuration re-binding (network.py, nicmatch.py and one module per
configuration style)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyv2v.v2v.convert.fakeguest import FakeGuest
from pyv2v.v2v.convert.linux.ifcfg import Ifcfg
from pyv2v.v2v.convert.linux.netconfig import Iface, Ifupdown, Pin
from pyv2v.v2v.convert.linux.netplan import Netplan, scan
from pyv2v.v2v.convert.linux.network import configure_network
from pyv2v.v2v.convert.linux.networkd import Networkd
from pyv2v.v2v.convert.linux.nicmatch import plan_pins
from pyv2v.v2v.convert.linux.nmkeyfile import NMKeyfile
from pyv2v.v2v.convert.linux.wicked import Wicked
from pyv2v.v2v.types import TargetNicPlan

A, B = "52:54:00:00:00:0a", "52:54:00:00:00:0b"


def nic(mac: str, dev: str | None = None) -> TargetNicPlan:
    return TargetNicPlan(mac=mac, source_dev=dev, network="default")


def conf(name: str | None, mac: str | None = None, **kw: bool) -> Iface:
    return Iface(name, mac, "/etc/x", "test", **kw)


def test_source_name_pinned_only_where_the_guest_uses_it() -> None:
    pins = plan_pins((nic(A.upper(), "eth0"), nic(B, "ens224")), [conf("eth0")])
    assert pins == [Pin("eth0", A)]


def test_p2v_live_name_differs_from_the_configured_name() -> None:
    # physical.xml says eth0 (the live system's name); the installed guest configures ens33.
    assert plan_pins((nic(A, "eth0"),), [conf("ens33")]) == [Pin("ens33", A)]


def test_mac_binding_wins_over_names_and_order() -> None:
    ifaces = [conf("eth0"), conf("ens34", B), conf("ens33", A)]
    pins = plan_pins((nic(A.upper(), "eth1"), nic(B, "eth0")), ifaces)
    assert pins == [Pin("ens33", A), Pin("ens34", B)]


def test_mac_only_configuration_claims_its_nic() -> None:
    # A NetworkManager connection bound to B by MAC only: the one named config gets A.
    assert plan_pins((nic(A), nic(B)), [conf(None, B), conf("ens33")]) == [Pin("ens33", A)]


def test_several_names_paired_in_source_order_with_a_warning(
        capsys: pytest.CaptureFixture[str]) -> None:
    pins = plan_pins((nic(A), nic(B)), [conf("ens10"), conf("ens9")])
    assert pins == [Pin("ens9", A), Pin("ens10", B)]
    assert "pinned in order, ens9=" in capsys.readouterr().err


def test_globs_and_stale_naming_rules_need_no_pin(capsys: pytest.CaptureFixture[str]) -> None:
    ifaces = [conf("en*", pattern=True), conf("eth7", "00:16:3e:00:00:07", naming_only=True)]
    assert plan_pins((nic(A),), ifaces) == []
    assert "warning" not in capsys.readouterr().err


@pytest.mark.parametrize("configured,expect", [
    (["eth0"], [Pin("eth0", A)]),
    (["br0", "enp3s0", "bond0.12"], [Pin("enp3s0", A)]),
    ([], []),
])
def test_pin_fallback_without_source_names(configured: list[str], expect: list[Pin]) -> None:
    assert plan_pins((nic(A),), [conf(n) for n in configured]) == expect


def test_unmatched_names_are_warned_never_silently_dropped(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert plan_pins((nic(A), nic(B)), [conf("ens33"), conf("ens34"), conf("ens35")]) == []
    err = capsys.readouterr().err
    for name in ("ens33", "ens34", "ens35"):
        assert f"configures interface {name} in /etc/x (test)" in err


NETPLAN = """\
network:
  version: 2
  ethernets:
    id0:                      # matched by MAC, renamed
      match:
        macaddress: "00:50:56:01:02:03"
      set-name: eth0
      dhcp4: true
    ens224:
      match: {macaddress: 00:50:56:04:05:06}
      addresses: [10.0.0.5/24]
    eth1:
      macaddress: 00:50:56:07:08:09   # sets the MAC: left alone
  bridges:
    br0:
      interfaces: [eth1]
"""


def test_netplan_scan() -> None:
    entries = scan(NETPLAN)
    assert [(e.id, e.name, e.mac, e.match_lines, e.flow_lines) for e in entries] == [
        ("id0", "eth0", "00:50:56:01:02:03", [5], []),
        ("ens224", None, "00:50:56:04:05:06", [], [9]),   # matched: the id is not a name
        ("eth1", "eth1", None, [], [])]


def test_netplan_retarget(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/etc/netplan/01-net.yaml", NETPLAN)
    changed = Netplan().retarget(g, [Pin("eth0", A)], None)
    assert changed == ["/etc/netplan/01-net.yaml"]
    text = g.read_text("/etc/netplan/01-net.yaml")
    assert f'macaddress: "{A}"' in text and "match: {macaddress: 00:50:56:04:05:06}" in text
    assert "macaddress: 00:50:56:07:08:09   # sets the MAC" in text
    assert Netplan().names(g) == ["eth0", "eth1"]
    assert [(i.name, i.mac) for i in Netplan().interfaces(g)] == [
        ("eth0", A), (None, "00:50:56:04:05:06"), ("eth1", None)]


def test_nm_keyfile_by_name_and_sole_nic(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    d = "/etc/NetworkManager/system-connections"
    g.write(f"{d}/a.nmconnection", "[connection]\nid=a\ntype=ethernet\ninterface-name=eth0\n"
            "[ethernet]\nmac-address=00:11:22:33:44:55\n")
    g.write(f"{d}/b.nmconnection", "[connection]\nid=b\ntype=ethernet\n"
            "[ethernet]\nmac-address=00:11:22:33:44:66\n")
    g.write(f"{d}/wifi.nmconnection", "[connection]\nid=w\ntype=wifi\n[wifi]\nssid=x\n")
    assert NMKeyfile().names(g) == ["eth0"]
    NMKeyfile().retarget(g, [Pin("eth0", A)], sole_mac=None)
    assert f"mac-address={A.upper()}" in g.read_text(f"{d}/a.nmconnection")
    assert "mac-address=00:11:22:33:44:66" in g.read_text(f"{d}/b.nmconnection")
    NMKeyfile().retarget(g, [], sole_mac=B)       # one target NIC: any MAC binding is it
    assert f"mac-address={B.upper()}" in g.read_text(f"{d}/b.nmconnection")


def test_ifcfg_hwaddr_keeps_quoting_and_skips_lo(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    d = "/etc/sysconfig/network-scripts"
    g.write(f"{d}/ifcfg-eth0",
            "DEVICE=eth0\nHWADDR='00:50:56:aa:bb:cc'\nMACADDR=00:50:56:aa:bb:cc\n")
    g.write(f"{d}/ifcfg-lo", "DEVICE=lo\n")
    g.write(f"{d}/ifcfg-eth0.bak", "HWADDR=00:50:56:aa:bb:cc\n")
    ifcfg = Ifcfg(d)
    assert ifcfg.names(g) == ["eth0"]
    assert ifcfg.retarget(g, [Pin("eth0", A)], None) == [f"{d}/ifcfg-eth0"]
    assert g.read_text(f"{d}/ifcfg-eth0") == \
        f"DEVICE=eth0\nHWADDR='{A}'\nMACADDR=00:50:56:aa:bb:cc\n"


def test_ifupdown_names(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/etc/network/interfaces", "auto lo eth0\niface lo inet loopback\n"
            "iface eth0 inet static\n  address 192.168.1.2/24\n")
    g.write("/etc/network/interfaces.d/vlan", "auto eth0.12\niface eth0.12 inet manual\n")
    assert Ifupdown().names(g) == ["eth0", "eth0.12"]


def test_link_files_where_udev_reads_them(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    g.write("/usr/lib/systemd/network/99-default.link", "[Link]\n")
    g.write("/etc/network/interfaces", "allow-hotplug eth0\niface eth0 inet dhcp\n")
    pins = configure_network(g, (nic(A.upper()),), (Ifupdown(),))
    assert pins == [Pin("eth0", A)]
    assert g.read_text("/etc/systemd/network/10-pyv2v-eth0.link").endswith(
        f"[Match]\nMACAddress={A}\n\n[Link]\nName=eth0\n")
    assert not g.exists("/etc/udev/rules.d/70-persistent-net.rules")


def test_udev_rules_on_old_guests(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    rules = "/etc/udev/rules.d/70-persistent-net.rules"
    g.write(rules, 'SUBSYSTEM=="net", ATTR{address}=="00:16:3e:00:00:01", NAME="eth0"\n'
            'SUBSYSTEM=="net", ATTR{address}=="00:16:3e:00:00:02", NAME="eth1"\n')
    configure_network(g, (nic(A, "eth0"),), ())
    text = g.read_text(rules)
    assert 'NAME="eth1"' in text and "00:16:3e:00:00:01" not in text
    assert f'ATTR{{address}}=="{A}", ATTR{{type}}=="1", NAME="eth0"' in text
    assert not g.exists("/etc/systemd/network")


def test_several_unnamed_interfaces_paired_in_order(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    g = FakeGuest(tmp_path)
    g.write("/usr/lib/systemd/network/99-default.link", "[Link]\n")
    g.write("/etc/network/interfaces", "iface eth0 inet dhcp\niface eth1 inet dhcp\n")
    pins = configure_network(g, (nic(A), nic(B)), (Ifupdown(),))
    assert pins == [Pin("eth0", A), Pin("eth1", B)]
    assert "eth0, eth1 and nothing says which source NIC each was" in capsys.readouterr().err


def test_networkd_names_macs_globs_and_link_files(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    d = "/etc/systemd/network"
    g.write(f"{d}/10-lan.network", "[Match]\nName=ens33 !eth9\n[Network]\nAddress=10.0.0.5/24\n"
            "DNS=10.0.0.53\n[Route]\nGateway=10.0.0.1\n")
    g.write(f"{d}/20-mac.network", "[Match]\nMACAddress=00-50-56-AA-00-02\n[Network]\nDHCP=yes\n")
    g.write(f"{d}/30-any.network", "# all others\n[Match]\nName=en*\n[Network]\nDHCP=yes\n")
    g.write(f"{d}/05-wan.link", "[Match]\nMACAddress=00:50:56:aa:00:03\n[Link]\nName=wan0\n")
    g.write(f"{d}/10-pyv2v-old.link", "[Match]\nMACAddress=52:54:00:00:00:99\n[Link]\nName=x\n")
    g.write("/usr/lib/systemd/network/99-default.link", "[Link]\nNamePolicy=path\n")
    got = [(i.name, i.mac, i.pattern, i.naming_only) for i in Networkd().interfaces(g)]
    assert got == [("wan0", "00:50:56:aa:00:03", False, True),
                   ("ens33", None, False, False),
                   (None, "00:50:56:aa:00:02", False, False),
                   ("en*", None, True, False)]
    # p2v: the live system called the cards eth0/eth1; the guest's names win.  The second card
    # is 20-mac.network's (by MAC), so ens33 can only be the first.
    nics = (nic(A, "eth0"), nic("00:50:56:AA:00:02", "eth1"))
    pins = configure_network(g, nics, ())
    assert pins == [Pin("ens33", A)]
    text = g.read_text(f"{d}/10-pyv2v-ens33.link")
    assert f"MACAddress={A}" in text and "Name=ens33" in text


def test_networkd_retarget_only_matches(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    d = "/etc/systemd/network"
    body = ("[Match]\nName=ens33\nMACAddress=00:50:56:aa:00:01\n"
            "[Link]\nMACAddress=00:50:56:aa:00:01\n")
    g.write(f"{d}/10-lan.network", body)
    assert Networkd().retarget(g, [Pin("ens33", A)], None) == [f"{d}/10-lan.network"]
    assert g.read_text(f"{d}/10-lan.network") == body.replace(
        "Name=ens33\nMACAddress=00:50:56:aa:00:01", f"Name=ens33\nMACAddress={A}")


def test_wicked_xml_names_macs_and_retarget(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    g = FakeGuest(tmp_path)
    d = "/etc/wicked/ifconfig"
    g.write(f"{d}/a.xml", '<?xml version="1.0"?>\n<interface><name namespace="ethernet">'
            "<permanent-address>00:50:56:9c:11:22</permanent-address></name>"
            "<ipv4:static><address><local>10.0.0.9/24</local></address></ipv4:static>"
            "</interface>\n<interface><name>ens224</name></interface>\n")
    g.write(f"{d}/bad.xml", '<!DOCTYPE x [<!ENTITY e "x">]><interface>&e;</interface>')
    assert [(i.name, i.mac) for i in Wicked().interfaces(g)] == [
        (None, "00:50:56:9c:11:22"), ("ens224", None)]
    assert "bad.xml is not well-formed XML" in capsys.readouterr().err   # entity not expanded
    assert Wicked().retarget(g, [], sole_mac=A) == [f"{d}/a.xml"]
    assert f"<permanent-address>{A}</permanent-address>" in g.read_text(f"{d}/a.xml")
    assert "<local>10.0.0.9/24</local>" in g.read_text(f"{d}/a.xml")


def test_mac_ip_option_parsed_like_the_reference() -> None:
    from pyv2v.errors import V2VError
    from pyv2v.v2v.network import NetworkMap
    from pyv2v.v2v.types import SourceNic, StaticIp

    m = NetworkMap()
    m.add_mac(f"{A.upper()}:ip:192.168.1.20,192.168.1.1,23,192.168.1.53,192.168.1.54")
    m.add_mac(f"{B}:ip:fd00::5")
    plan = m.plan((SourceNic(A, "lan"), SourceNic(B, "lan")))
    assert plan[0].static == StaticIp("192.168.1.20", 23, "192.168.1.1",
                                      ("192.168.1.53", "192.168.1.54"))
    assert plan[1].static == StaticIp("fd00::5", 64)
    for bad, why in ((f"{A}:ip:300.1.1.1", "300.1.1.1"), (f"{A}:ip:10.0.0.1,,33", "1-32"),
                     (f"{A}:ip:10.0.0.1,gw", "gw")):
        with pytest.raises(V2VError, match=why):
            NetworkMap().add_mac(bad)
    m.add_mac("52:54:00:99:99:99:ip:10.0.0.9")
    with pytest.raises(V2VError, match="no NIC with that MAC"):
        m.plan((SourceNic(A, "lan"), SourceNic(B, "lan")))


def static_nic(mac: str, name: str | None = None) -> TargetNicPlan:
    from pyv2v.v2v.types import StaticIp
    return TargetNicPlan(mac, name, "default", static=StaticIp("10.9.0.5", 16, "10.9.0.1",
                                                                 ("10.9.0.53",)))


def test_static_in_ifcfg_keeps_other_keys(tmp_path: Path) -> None:
    g = FakeGuest(tmp_path)
    d = "/etc/sysconfig/network-scripts"
    g.write(f"{d}/ifcfg-ens192", "DEVICE=ens192\nBOOTPROTO=dhcp\nHWADDR=00:50:56:01:02:03\n"
            "DNS1=1.1.1.1\nDNS2=8.8.8.8\nMTU=9000\n")
    configure_network(g, (static_nic(A),), (Ifcfg(d),))
    assert g.read_text(f"{d}/ifcfg-ens192") == (
        f"DEVICE=ens192\nHWADDR={A}\nMTU=9000\n# Written by pyv2v (--mac MAC:ip:…)\n"
        "BOOTPROTO=none\nONBOOT=yes\nIPADDR=10.9.0.5\nPREFIX=16\nGATEWAY=10.9.0.1\n"
        "DNS1=10.9.0.53\n")


def test_static_by_mac_through_networkd_when_the_name_is_unknown(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    g = FakeGuest(tmp_path)
    g.write("/etc/network/interfaces", "auto lo\niface lo inet loopback\n")
    g.symlink("/lib/systemd/system/systemd-networkd.service",
              "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service")
    configure_network(g, (static_nic(A), static_nic(B)), (Ifupdown(),))
    text = g.read_text("/etc/systemd/network/05-pyv2v-52540000000a.network")
    assert f"MACAddress={A}" in text and "Address=10.9.0.5/16" in text and "DNS=10.9.0.53" in text
    assert "Static address 10.9.0.5/16 on the NIC" in capsys.readouterr().out
    g2 = FakeGuest(tmp_path / "no-networkd")
    g2.write("/etc/network/interfaces", "auto lo\niface lo inet loopback\n")
    configure_network(g2, (static_nic(A),), (Ifupdown(),))
    assert "its interface name in the guest is unknown): not configured" in \
        capsys.readouterr().err


def test_netplan_static_replaces_the_only_entry_and_its_empty_ethernets(tmp_path: Path) -> None:
    """The NIC's entry is the file's only one: `ethernets:` is commented out with it (an empty
    `ethernets:` is null, which netplan refuses), `network:`/`version:` stay."""
    import yaml

    from pyv2v.v2v.types import StaticIp

    g = FakeGuest(tmp_path)
    g.write("/etc/netplan/01-ens160.yaml", (
        "network:\n  version: 2\n  renderer: networkd\n  ethernets:\n    ens160:\n"
        "      addresses: [10.0.2.15/24]\n      gateway4: 10.0.2.2\n"
        "      nameservers:\n        addresses: [10.0.2.3]\n"))
    ip = StaticIp("10.0.2.77", 24, "10.0.2.2", ("10.0.2.3",))
    files = Netplan().write_static(g, "ens160", "52:54:00:aa:bb:cc", ip)
    assert files == ["/etc/netplan/01-ens160.yaml", "/etc/netplan/90-pyv2v-525400aabbcc.yaml"]
    old = yaml.safe_load(g.read_text(files[0]))
    assert old == {"network": {"version": 2, "renderer": "networkd"}}
    new = yaml.safe_load(g.read_text(files[1]))["network"]["ethernets"]["ens160"]
    assert new == {"match": {"macaddress": "52:54:00:aa:bb:cc"}, "set-name": "ens160",
                   "dhcp4": False, "addresses": ["10.0.2.77/24"],
                   "routes": [{"to": "0.0.0.0/0", "via": "10.0.2.2"}],
                   "nameservers": {"addresses": ["10.0.2.3"]}}
