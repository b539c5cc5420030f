"""`ctgw doctor` checks of Asterisk's manager.conf and extensions.conf on sample files."""

from __future__ import annotations

from pathlib import Path

from gateway.telephony.asterisk_conf import read_config
from gateway.telephony.doctor import (
    check_asterisk_config,
    check_extensions_conf,
    check_manager_conf,
)

SAMPLES = Path(__file__).parent.parent / "fixtures" / "asterisk-conf"


def codes(findings) -> set[tuple[str, str]]:
    return {(f.level, f.code) for f in findings}


def test_careful_config_has_no_findings():
    """Loopback AMI, a least-privilege ctgw user and the ctgw include give nothing to warn on."""
    assert check_asterisk_config(SAMPLES / "good", click_to_call=True) == []


def test_unbound_ami_and_dangerous_rights_are_reported():
    """No bindaddr, and users with system/command/config (also via `all` or a template) warn."""
    findings = check_asterisk_config(SAMPLES / "bad")
    assert ("warning", "ami_bound_beyond_loopback") in codes(findings)
    risky = [f.message for f in findings if f.code == "ami_user_dangerous_rights"]
    assert any("[admin] has read rights system" in m for m in risky)
    assert any("[admin] has write rights system, command, config" in m for m in risky)
    assert any("[ctgw] has read rights config" in m for m in risky)
    # `write` repeated in a `(+)` section: the last value wins, as in Asterisk's manager.c.
    assert not any("[ctgw] has write rights" in m for m in risky)


def test_ctgw_user_missing_a_needed_class_is_an_error():
    """The ctgw user without `reporting` (CoreShowChannels) is an error naming the class."""
    findings = check_asterisk_config(SAMPLES / "bad")
    missing = [f for f in findings if f.code == "ami_user_missing_right"]
    assert [f.message for f in missing] == [
        "AMI user [ctgw] lacks write class `reporting` that ctgw needs"
    ]


def test_missing_include_and_contexts_are_errors():
    """An include of a file that does not exist and absent ctgw contexts are both reported."""
    findings = check_extensions_conf(SAMPLES / "bad" / "extensions.conf")
    assert codes(findings) == {
        ("error", "ctgw_include_missing_file"),
        ("error", "ctgw_dialplan_missing"),
    }
    include = next(f for f in findings if f.code == "ctgw_include_missing_file")
    assert include.line == 4 and include.file.endswith("bad/extensions.conf")


def test_bind_to_all_addresses_warns_and_loopback_names_do_not(tmp_path):
    """`bindaddr = 0.0.0.0` warns; `::1` and `localhost` are loopback and do not."""
    for address, warns in (
        ("0.0.0.0", True),
        ("192.0.2.7", True),
        ("::1", False),
        ("localhost", False),
    ):
        conf = tmp_path / "manager.conf"
        conf.write_text(
            f"[general]\nenabled=yes\nbindaddr={address}\nchannelvars=MIXMONITOR_FILENAME\n"
            "[ctgw]\nsecret=s\nread=call\nwrite=reporting\n"
        )
        (tmp_path / "extensions.conf").write_text("[ctgw-inbound]\n[ctgw-lookup]\n")
        found = {f.code for f in check_asterisk_config(tmp_path)}
        assert ("ami_bound_beyond_loopback" in found) is warns, address


def test_missing_files_and_disabled_ami_are_errors(tmp_path):
    """No manager.conf or extensions.conf, or AMI switched off, are errors, not crashes."""
    assert {f.code for f in check_asterisk_config(tmp_path)} == {
        "manager_conf_missing",
        "extensions_conf_missing",
    }
    (tmp_path / "manager.conf").write_text("[general]\nenabled = no\nbindaddr = 127.0.0.1\n")
    assert "ami_disabled" in {f.code for f in check_asterisk_config(tmp_path)}


def test_reader_handles_templates_includes_comments_and_escapes():
    """Templates are inherited, `(+)` extends, includes glob, block comments and `\\;` hold."""
    manager = read_config(SAMPLES / "good" / "manager.conf")
    ctgw = manager.section("ctgw")
    assert ctgw is not None and ctgw.get("permit") == "127.0.0.1/255.255.255.255"
    assert manager.section("readonly") is None  # a template is not a user
    dashboard = manager.section("dashboard")
    assert dashboard is not None and dashboard.get("read") == "call,reporting;odd"
    extensions = read_config(SAMPLES / "good" / "extensions.conf")
    names = [s.name for s in extensions.sections]
    assert "not-a-context" not in names and "ctgw-lookup" in names
    bad = read_config(SAMPLES / "bad" / "manager.conf")
    ctgw_bad = bad.section("ctgw")
    assert ctgw_bad is not None and ctgw_bad.get("write") == "originate"
    assert bad.errors == []


def test_include_loops_and_garbage_do_not_crash(tmp_path):
    """A file including itself and lines outside any section are reported as errors."""
    conf = tmp_path / "manager.conf"
    conf.write_bytes(b"stray = 1\n#include manager.conf\n[general]\nenabled=yes\n\xff\xfe\n")
    config = read_config(conf)
    assert any("include loop" in e for e in config.errors)
    assert any("not 'key = value'" in e for e in config.errors)
    assert config.section("general") is not None


def test_originate_without_click_to_call_is_a_warning(tmp_path):
    """The ctgw user holding `originate` while click-to-call is off is named; with it on, not."""
    (tmp_path / "manager.conf").write_text(
        "[general]\nenabled = yes\nbindaddr = 127.0.0.1\n"
        "channelvars = CTGW_CALL_ID,CTGW_SOURCE,MIXMONITOR_FILENAME\n\n"
        "[ctgw]\nsecret = s\nread = call\nwrite = reporting,originate\n"
    )
    off = check_manager_conf(tmp_path / "manager.conf", click_to_call=False)
    on = check_manager_conf(tmp_path / "manager.conf", click_to_call=True)
    assert "ami_user_unneeded_originate" in {f.code for f in off}
    assert "ami_user_unneeded_originate" not in {f.code for f in on}


def test_click_to_call_through_the_shipped_context_needs_its_trunk(tmp_path):
    """Click-to-call on, dialing through [ctgw-outbound], with CTGW_OUTBOUND_TRUNK empty (as
    shipped) or missing is an error naming the line; set, off, or another context: nothing."""
    shipped = Path(__file__).parents[2] / "dialplans" / "ctgw-globals.conf"
    extensions = tmp_path / "extensions.conf"
    extensions.write_text(f"[globals]\n#include {shipped}\n[ctgw-inbound]\n[ctgw-lookup]\n")
    (finding,) = check_extensions_conf(extensions, click_to_call=True)
    assert (finding.level, finding.code) == ("error", "ctgw_outbound_trunk_unset")
    assert (finding.file, finding.line) == (str(extensions), 1)  # the [globals] it is read in
    assert "CTGW_OUTBOUND_TRUNK=" in shipped.read_text().splitlines()
    assert check_extensions_conf(extensions, click_to_call=False) == []
    assert check_extensions_conf(extensions, click_to_call=True, outbound_context="my-out") == []
    extensions.write_text("[ctgw-inbound]\n[ctgw-lookup]\n")  # no [globals] at all
    assert {f.code for f in check_extensions_conf(extensions, click_to_call=True)} == {
        "ctgw_outbound_trunk_unset"
    }
    extensions.write_text(
        "[globals]\nCTGW_OUTBOUND_TRUNK => carrier\n[ctgw-inbound]\n[ctgw-lookup]\n"
    )
    assert check_extensions_conf(extensions, click_to_call=True) == []
