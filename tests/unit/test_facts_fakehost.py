"""tracekit.agent.facts.collect on fake host trees (no live probes)."""

import json
import os
import re

import pytest

from tests.unit.fakehost import (BPFTRACE_INFO_DIR, DISTROS, LAB_KERNEL, NO_SYS_RESOURCE_CAPS, ROOT_CAPS,
                                 FakeHost, elf, full_host, lab_machine)
from tracekit.agent import elf as agent_elf
from tracekit.agent import facts

NOBLE = DISTROS["ubuntu-noble"]["release"]


@pytest.fixture
def host(tmp_path):
    return FakeHost.distro(tmp_path / "root", "ubuntu-noble")


def collect(host):
    return facts.collect(str(host.root))


# -- identity -------------------------------------------------------------------
@pytest.mark.parametrize("name, expected", [
    ("ubuntu-noble", {"id": "ubuntu", "like": ["debian"], "version_id": "24.04", "codename": "noble",
                      "name": "Ubuntu 24.04.2 LTS"}),
    ("debian-bookworm", {"id": "debian", "like": [], "version_id": "12", "codename": "bookworm",
                         "name": "Debian GNU/Linux 12 (bookworm)"}),
])
def test_distro(tmp_path, name, expected):
    assert collect(FakeHost.distro(tmp_path, name))["host"]["distro"] == expected


def test_unknown_distro_from_usr_lib_os_release(tmp_path):
    host = FakeHost(tmp_path)
    host.os_release("NAME='Tiny Linux'\nID=tiny\nID_LIKE=\"ubuntu debian\"\nUBUNTU_CODENAME=noble\n"
                    "garbage line without equals\n", rel="usr/lib/os-release")
    assert collect(host)["host"]["distro"] == {
        "id": "tiny", "like": ["ubuntu", "debian"], "version_id": None, "codename": "noble", "name": None}


def test_bare_tree_has_nothing_and_does_not_crash(tmp_path):
    result = facts.collect(str(tmp_path))
    assert result["live"] is False
    assert result["host"] == {"hostname": None, "distro": {
        "id": None, "like": [], "version_id": None, "codename": None, "name": None}}
    assert result["kernel"] == {"release": None, "version": None, "arch": None, "compiler": None}
    assert result["mounts"] == {"debugfs": None, "tracefs": None, "securityfs": None, "bpf": None}
    assert result["filesystems"] is None and result["pmus"] is None
    assert result["tracefs"]["mounted"] is False and result["tracefs"]["error"] == "tracefs is not mounted"
    assert result["lockdown"] == {"mode": None, "available": None}
    assert result["process"] == {"uid": None, "cap_eff": None, "memlock": None, "capabilities": {
        "CAP_SYS_ADMIN": None, "CAP_SYS_RESOURCE": None, "CAP_PERFMON": None, "CAP_BPF": None}}
    assert all(not tool["found"] for tool in result["tools"].values())
    assert result["setup"] is None and result["unreadable"] == []


@pytest.mark.parametrize("name", sorted(DISTROS))
def test_kernel_identity(tmp_path, name):
    spec = DISTROS[name]
    kernel = collect(FakeHost.distro(tmp_path, name))["kernel"]
    assert (kernel["release"], kernel["version"], kernel["arch"]) == (spec["release"], spec["version"], "x86_64")


@pytest.mark.parametrize("name, compiler", [
    ("debian-bookworm", {"text": "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", "gcc_major": 12}),
    ("ubuntu-jammy", {"text": "gcc (Ubuntu 11.4.0-1ubuntu1~22.04.3) 11.4.0", "gcc_major": 11}),
    ("ubuntu-noble", {"text": "x86_64-linux-gnu-gcc-13 (Ubuntu 13.3.0-6ubuntu2~24.04.1) 13.3.0", "gcc_major": 13}),
])
def test_kernel_compiler(tmp_path, name, compiler):
    assert collect(FakeHost.distro(tmp_path, name))["kernel"]["compiler"] == compiler


def test_kernel_compiler_unknown(host):
    host.write("proc/version", "Linux version %s (builder@host) (Ubuntu clang version 18.1.3, "
               "Ubuntu LLD 18.1.3) #1 SMP\n" % NOBLE)
    assert collect(host)["kernel"]["compiler"] is None


def test_hostname_sysctl_and_kernel_config(host):
    result = collect(host)
    assert result["host"]["hostname"] == "fakehost"
    assert result["sysctl"] == {"perf_event_paranoid": 2, "kptr_restrict": 1, "unprivileged_bpf_disabled": 2,
                                "ftrace_enabled": 1, "modules_disabled": 0}
    cfg = result["kconfig"]
    assert cfg["source"] == "/boot/config-%s" % NOBLE and cfg["complete"] and cfg["error"] is None
    assert cfg["options"]["KPROBES"] == "y" and cfg["options"]["MODULE_SIG_FORCE"] == "n"
    assert cfg["options"]["IKHEADERS"] == "m"
    assert set(cfg["options"]) == set(facts.RELEVANT_OPTIONS)


def test_kernel_config_missing(tmp_path):
    result = collect(FakeHost.distro(tmp_path, "ubuntu-noble", config=False))
    assert result["kconfig"]["error"] == "no kernel config found"
    assert set(result["kconfig"]["options"].values()) == {None}


# -- mounts, tracefs ----------------------------------------------------------------
def test_mounts_from_mountinfo(host):
    host.mount("debugfs", "/sys/kernel/debug")
    host.mount("tracefs", "/mnt/my traces")
    host.mount("tracefs", "/sys/kernel/tracing")  # only the first mount of a type counts
    host.mount("bpf", "/sys/fs/bpf")
    host.mount("cgroup2", "/sys/fs/cgroup")
    assert collect(host)["mounts"] == {"debugfs": "/sys/kernel/debug", "tracefs": "/mnt/my traces",
                                       "securityfs": None, "bpf": "/sys/fs/bpf"}


def test_filesystems(host):
    host.filesystems(["sysfs", "ext4", "tracefs"])
    assert collect(host)["filesystems"] == ["ext4", "sysfs", "tracefs"]


def test_tracefs_readable(host):
    host.tracefs()
    tracefs = collect(host)["tracefs"]
    assert tracefs == {
        "mounted": True, "path": "/sys/kernel/tracing", "probed": "mounted", "error": None, "readable": True,
        "available_tracers": ["function_graph", "function", "nop"], "current_tracer": "nop",
        "kprobe_events": True, "uprobe_events": True, "dynamic_events": True, "instances": True,
        "set_graph_function": True, "syscall_events": True, "sched_events": True, "function_filter": "readable"}


def test_tracefs_like_this_labs_kernel(host):
    """6.18 custom kernel of LAB.md: no kprobes, no function_graph, no dynamic events for kprobes."""
    host.tracefs(tracers="blk function nop", kprobe_events=False, function_filter="absent")
    tracefs = collect(host)["tracefs"]
    assert tracefs["readable"] and tracefs["available_tracers"] == ["blk", "function", "nop"]
    assert tracefs["kprobe_events"] is False and tracefs["uprobe_events"] is True
    assert tracefs["function_filter"] == "absent"


def test_tracefs_mount_point_with_a_space(host):
    host.tracefs(path="/mnt/my traces")
    tracefs = collect(host)["tracefs"]
    assert tracefs["path"] == "/mnt/my traces" and tracefs["readable"] and tracefs["kprobe_events"]


def test_tracefs_under_debugfs(host):
    host.mount("debugfs", "/sys/kernel/debug")
    host.tracefs(path="/sys/kernel/debug/tracing", mount=False)
    tracefs = collect(host)["tracefs"]
    assert tracefs["mounted"] and tracefs["readable"] and tracefs["path"] == "/sys/kernel/debug/tracing"


def test_tracefs_function_filter_unreadable(host):
    host.tracefs(function_filter="unreadable")
    assert collect(host)["tracefs"]["function_filter"] == "EISDIR (Is a directory)"


def test_tracefs_mounted_without_available_tracers(host):
    host.tracefs(tracers=None)
    tracefs = collect(host)["tracefs"]
    assert tracefs["mounted"] and tracefs["readable"] is False
    assert tracefs["error"] == "/sys/kernel/tracing/available_tracers missing"


def test_tracefs_unreadable_file_is_recorded(host):
    host.tracefs(tracers=None)
    host.mkdir("sys/kernel/tracing/available_tracers")
    result = collect(host)
    assert result["tracefs"]["readable"] is False
    assert result["tracefs"]["error"] == "/sys/kernel/tracing/available_tracers: EISDIR (Is a directory)"
    assert result["tracefs"]["error"] in result["unreadable"]


def test_tracefs_not_mounted(host):
    host.tracefs(mount=False)  # files exist but nothing says tracefs is mounted there
    result = collect(host)
    assert result["tracefs"] == {"mounted": False, "path": None, "probed": None, "error": "tracefs is not mounted"}
    assert result["mounts"]["tracefs"] is None


def test_kernel_without_tracefs(host):
    host.filesystems(["sysfs", "proc", "ext4"])
    tracefs = collect(host)["tracefs"]
    assert tracefs["supported"] is False and tracefs["error"] == "kernel has no tracefs"


# -- lockdown, secure boot, capabilities, limits -------------------------------------
@pytest.mark.parametrize("mode", ["none", "integrity", "confidentiality"])
def test_lockdown(host, mode):
    host.securityfs(mode)
    assert collect(host)["lockdown"] == {"mode": mode, "available": ["none", "integrity", "confidentiality"]}


def test_lockdown_unknown_without_securityfs(host):
    assert collect(host)["lockdown"] == {"mode": None, "available": None}


@pytest.mark.parametrize("data, state, detail", [
    (b"\x06\x00\x00\x00\x01", "enabled", "EFI SecureBoot variable"),
    (b"\x06\x00\x00\x00\x00", "disabled", "EFI SecureBoot variable"),
    (b"\x06\x00", "unknown", "short SecureBoot variable"),
    (None, "unknown", "efivars has no SecureBoot variable"),
])
def test_secure_boot(host, data, state, detail):
    host.secure_boot(data)
    assert collect(host)["secure_boot"] == {"state": state, "detail": detail}


def test_secure_boot_without_efi(host):
    assert collect(host)["secure_boot"] == {"state": "disabled", "detail": "not booted through EFI"}


@pytest.mark.parametrize("uid, cap_eff, expected", [
    (0, ROOT_CAPS, dict(CAP_SYS_ADMIN=True, CAP_SYS_RESOURCE=True, CAP_PERFMON=True, CAP_BPF=True)),
    (0, NO_SYS_RESOURCE_CAPS, dict(CAP_SYS_ADMIN=True, CAP_SYS_RESOURCE=False, CAP_PERFMON=True, CAP_BPF=True)),
    (0, "0000003fffffffff", dict(CAP_SYS_ADMIN=True, CAP_SYS_RESOURCE=True, CAP_PERFMON=False, CAP_BPF=False)),
    (1000, "0000000000000000", dict(CAP_SYS_ADMIN=False, CAP_SYS_RESOURCE=False, CAP_PERFMON=False, CAP_BPF=False)),
], ids=["root", "root-without-sys-resource", "root-on-5.4", "user"])
def test_capabilities(host, uid, cap_eff, expected):
    host.process(uid=uid, cap_eff=cap_eff)
    process = collect(host)["process"]
    assert process["uid"] == uid and process["cap_eff"] == cap_eff and process["capabilities"] == expected


@pytest.mark.parametrize("memlock, expected", [
    ((8388608, 8388608), {"soft": 8388608, "hard": 8388608}),
    ((65536, None), {"soft": 65536, "hard": None}),
    ((None, None), {"soft": None, "hard": None}),
])
def test_memlock(host, memlock, expected):
    host.process(memlock=memlock)
    assert collect(host)["process"]["memlock"] == expected


# -- kernel files: modules, BTF, PMUs, headers, debug info ---------------------------
def test_modules_btf_and_pmus(host):
    result = collect(host)
    assert result["modules"] == {"proc_modules": True} and result["btf"] == {"vmlinux": False}
    host.btf()
    host.pmus(["cpu", "software", "kprobe"])
    result = collect(host)
    assert result["btf"] == {"vmlinux": True} and result["pmus"] == ["cpu", "kprobe", "software"]


def test_headers(host):
    assert collect(host)["headers"] == {"build_dir": None, "kheaders": False}
    host.write("sys/kernel/kheaders.tar.xz", b"\xfd7zXZ")
    host.headers(config=False)
    assert collect(host)["headers"] == {"build_dir": "/lib/modules/%s/build" % NOBLE, "kheaders": True,
                                        "build_config": False}
    host.headers(config=True)
    assert collect(host)["headers"]["build_config"] is True


def test_headers_in_usr_src(host):
    host.write("usr/src/linux-headers-%s/Makefile" % NOBLE, "VERSION = 6\n")
    assert collect(host)["headers"]["build_dir"] == "/usr/src/linux-headers-%s" % NOBLE


def test_debuginfo_with_dwarf(host):
    host.vmlinux(dwarf=True)
    path = "/usr/lib/debug/boot/vmlinux-%s" % NOBLE
    assert collect(host)["debuginfo"] == {"vmlinux": path, "candidates": [{"path": path, "dwarf": True}]}


def test_debuginfo_stripped_vmlinux_is_not_debuginfo(host):
    host.vmlinux("boot/vmlinux-%s" % NOBLE, dwarf=False)
    host.write("usr/lib/debug/vmlinux-%s" % NOBLE, b"not an ELF file at all, just text")
    assert collect(host)["debuginfo"] == {"vmlinux": None, "candidates": [
        {"path": "/boot/vmlinux-%s" % NOBLE, "dwarf": False},
        {"path": "/usr/lib/debug/vmlinux-%s" % NOBLE, "dwarf": None}]}


def test_debuginfo_first_with_dwarf_wins(host):
    host.vmlinux("usr/lib/debug/boot/vmlinux-%s" % NOBLE, dwarf=False)
    host.vmlinux("lib/modules/%s/build/vmlinux" % NOBLE, dwarf=True)
    host.vmlinux("boot/vmlinux-%s" % NOBLE, dwarf=True)
    debuginfo = collect(host)["debuginfo"]
    assert debuginfo["vmlinux"] == "/lib/modules/%s/build/vmlinux" % NOBLE
    assert [c["dwarf"] for c in debuginfo["candidates"]] == [False, True]


@pytest.mark.parametrize("bits, endian", [(64, "<"), (64, ">"), (32, "<"), (32, ">")])
@pytest.mark.parametrize("sections, expected", [
    ([".text", ".debug_info"], True),
    ([".text", ".zdebug_info"], True),
    ([".text", ".debug_line", ".symtab"], False),
])
def test_elf_has_section(tmp_path, bits, endian, sections, expected):
    path = tmp_path / "vmlinux"
    path.write_bytes(elf(sections, bits=bits, endian=endian))
    assert agent_elf.has_section(str(path), (".debug_info", ".zdebug_info")) is expected


@pytest.mark.parametrize("data", [b"", b"\x7fELF", b"MZ" + bytes(100), elf([".debug_info"])[:-20]],
                         ids=["empty", "short", "not-elf", "cut-section-table"])
def test_elf_has_section_unreadable(tmp_path, data):
    path = tmp_path / "vmlinux"
    path.write_bytes(data)
    assert agent_elf.has_section(str(path), (".debug_info",)) is None
    assert agent_elf.has_section(str(tmp_path / "absent"), (".debug_info",)) is None


def test_debuginfod_urls(host, monkeypatch):
    monkeypatch.setenv("DEBUGINFOD_URLS", "https://from-the-environment.invalid")  # not this host's
    host.debuginfod("ubuntu", "https://debuginfod.distro.invalid\n")
    host.debuginfod("extra", "https://debuginfod.example.invalid/ #disabled\nhttps://debuginfod.distro.invalid\n")
    host.debuginfod("empty", "\n")
    assert collect(host)["debuginfod"] == {
        "urls": ["https://debuginfod.example.invalid/", "https://debuginfod.distro.invalid"],
        "sources": ["/etc/debuginfod/extra.urls", "/etc/debuginfod/ubuntu.urls"]}


# -- tools -----------------------------------------------------------------------
def test_tool_versions(host):
    host.bpftrace("0.20.2")
    host.trace_cmd("3.1.6")
    host.stap(bpf=True)
    host.sysdig("0.36.0")
    host.gcc()
    tools = collect(host)["tools"]
    bpftrace = dict(tools["bpftrace"])
    info = bpftrace.pop("info")
    assert bpftrace == {"found": True, "path": "/usr/bin/bpftrace", "version": "0.20.2"}
    assert info["kernel_features"]["btf"] is True and info["build"]["version"] == "v0.20.2"
    assert tools["trace-cmd"] == {"found": True, "path": "/usr/bin/trace-cmd", "version": "3.1.6"}
    assert tools["gcc"] == {"found": True, "path": "/usr/bin/gcc", "version": "13.3.0"}
    assert tools["sysdig"]["version"] == "0.36.0"
    stap = tools["stap"]
    assert stap["version"] == "5.1" and stap["staprun"] is True
    assert stap["runtimes"] == ["kernel", "bpf", "dyninst"]
    assert stap["features"][:3] == ["AVAHI", "BOOST_STRING_REF", "DYNINST"] and "MONITOR_LIBS" in stap["features"]


def test_stap_without_bpf_runtime(host):
    host.stap(bpf=False, staprun=False)
    stap = collect(host)["tools"]["stap"]
    assert stap["runtimes"] == ["kernel", "dyninst"] and stap["staprun"] is False


def test_tools_absent_or_not_executable(host):
    host.write("usr/bin/bpftrace", "#!/bin/sh\necho bpftrace v0.20.2\n", mode=0o644)
    host.mkdir("usr/sbin/sysdig")
    tools = collect(host)["tools"]
    for name in ("perf", "trace-cmd", "bpftrace", "stap", "sysdig", "gcc", "bcc", "libbpf-tools"):
        assert tools[name]["found"] is False, name
    assert tools["bpftrace"] == {"found": False, "path": None, "version": None}
    assert "drivers" not in tools["sysdig"]


def test_tool_found_in_sbin_before_bin(host):
    host.bpftrace("0.21.0").rename(host.mkdir("usr/local/sbin") / "bpftrace")
    host.bpftrace("0.20.2")
    assert collect(host)["tools"]["bpftrace"] == {"found": True, "path": "/usr/local/sbin/bpftrace",
                                                  "version": "0.21.0", "info": None}


@pytest.mark.parametrize("userland, version, btf", [("jammy", "0.14.0", False), ("bookworm", "0.17.0", True),
                                                     ("resolute", "0.25.0", True)])
def test_bpftrace_info_on_this_kernel(tmp_path, userland, version, btf):
    """bpftrace's own view (--info) of this machine's kernel, under each
    release's bpftrace: only 0.14 cannot read its BTF."""
    facts = collect(lab_machine(tmp_path, userland))
    bpftrace = facts["tools"]["bpftrace"]
    assert bpftrace["version"] == version
    assert bpftrace["info"]["kernel_features"]["btf"] is btf
    assert facts["btf"]["vmlinux"] is True and facts["modules"]["proc_modules"] is False
    assert facts["headers"] == {"build_dir": None, "kheaders": False}


def test_bpftrace_info_kept_for_the_same_binary_and_kernel(tmp_path, monkeypatch):
    """As root on the running host, --info runs once per bpftrace binary and
    booted kernel; its output is kept in BPFTRACE_INFO_CACHE."""
    host = lab_machine(tmp_path / "root", "bookworm")
    cache = tmp_path / "run" / "tracekit" / "bpftrace-info.json"
    monkeypatch.setattr(facts, "BPFTRACE_INFO_CACHE", str(cache))
    # Stand-in for root on the running host (tests may run as another user,
    # and live collection probes this machine): the fake tree, read as live
    # (its tools are looked up below its root either way).
    monkeypatch.setattr(facts.os, "geteuid", lambda: 0)
    live = facts._Host(str(host), live=True)
    kernel = live.kernel()

    def btf():
        return live.tools(kernel)["bpftrace"]["info"]["kernel_features"]["btf"]

    assert btf() is True
    entry = json.loads(cache.read_text())
    assert entry["key"]["path"] == str(host.root / "usr/bin/bpftrace") and entry["key"]["kernel"] == LAB_KERNEL
    # What is kept is what the next run reads (the binary is not run again):
    entry["output"] = (BPFTRACE_INFO_DIR / "jammy-0.14.0.txt").read_text()
    cache.write_text(json.dumps(entry))
    assert btf() is False
    # A new binary (a package upgrade) runs again.
    os.utime(host.root / "usr/bin/bpftrace", ns=(1, 1))
    assert btf() is True
    # So does any package change (a new libbpf may read BTF that the old one could not).
    cache.write_text(json.dumps(dict(json.loads(cache.read_text()), output=entry["output"])))
    assert btf() is False
    host.write("var/lib/dpkg/status", "Package: libbpf1\nStatus: install ok installed\nVersion: 1:1.5.0-1\n")
    assert btf() is True


def test_bpftrace_info_not_kept_off_the_running_host(tmp_path, monkeypatch):
    cache = tmp_path / "bpftrace-info.json"
    monkeypatch.setattr(facts, "BPFTRACE_INFO_CACHE", str(cache))
    assert collect(lab_machine(tmp_path / "root"))["tools"]["bpftrace"]["info"]["kernel_features"]["btf"] is True
    assert not cache.exists()


def test_kept_output_read_back_only_for_its_key(tmp_path):
    path = str(tmp_path / "sub" / "kept.json")
    assert facts.cached_output(path, {"a": 1}) is None
    facts.keep_output(path, {"a": 1}, "text")
    assert facts.cached_output(path, {"a": 1}) == "text"
    assert facts.cached_output(path, {"a": 2}) is None
    (tmp_path / "sub" / "kept.json").write_text("{garbled")
    assert facts.cached_output(path, {"a": 1}) is None
    # A place it cannot write to only costs the next run the time.
    (tmp_path / "file").write_text("")
    facts.keep_output(str(tmp_path / "file" / "kept.json"), {"a": 1}, "text")
    assert facts.cached_output(str(tmp_path / "file" / "kept.json"), {"a": 1}) is None


def test_perf_found(host):
    host.perf()
    perf = collect(host)["tools"]["perf"]
    assert perf["found"] and perf["path"] == perf["usable_path"] == "/usr/bin/perf"
    assert perf["ubuntu_wrapper"] is False


def test_perf_version_comes_from_the_perf_below_root(host):
    host.perf("6.8.12")
    perf = collect(host)["tools"]["perf"]
    assert perf["version"] == "6.8.12" and perf["note"] is None


def test_ubuntu_perf_wrapper_with_matching_linux_tools(host):
    host.perf_ubuntu_wrapper([NOBLE, "6.8.0-40-generic"])
    perf = collect(host)["tools"]["perf"]
    assert perf["found"] and perf["ubuntu_wrapper"] and perf["path"] == "/usr/bin/perf"
    assert perf["usable_path"] == "/usr/lib/linux-tools/%s/perf" % NOBLE
    assert not (perf["note"] or "").startswith("no linux-tools package")


WRAPPER_NOTE = ("no linux-tools package for %s: the perf wrapper refuses to run; "
                "/usr/lib/linux-tools/6.8.0-100-generic/perf works" % NOBLE)


def test_ubuntu_perf_wrapper_falls_back_to_newest_linux_tools(host):
    host.perf_ubuntu_wrapper(["6.8.0-40-generic", "6.8.0-100-generic", "6.5.0-9-generic"])
    perf = collect(host)["tools"]["perf"]
    assert perf["ubuntu_wrapper"] is True
    assert perf["usable_path"] == "/usr/lib/linux-tools/6.8.0-100-generic/perf"  # by version, not by name
    assert perf["note"].startswith(WRAPPER_NOTE)


def test_perf_note_sentences_are_separated(host):
    host.perf_ubuntu_wrapper(["6.8.0-100-generic"])
    host.root.joinpath("usr/lib/linux-tools/6.8.0-100-generic/perf").chmod(0o644)  # cannot run
    note = collect(host)["tools"]["perf"]["note"]
    assert re.fullmatch(re.escape(WRAPPER_NOTE) + r"[;.,] .*--version did not run", note), note


def test_ubuntu_perf_wrapper_without_linux_tools(host):
    host.perf_ubuntu_wrapper([])
    perf = collect(host)["tools"]["perf"]
    assert perf["found"] and perf["ubuntu_wrapper"] and perf["usable_path"] is None
    assert perf["note"] == "the perf wrapper finds no linux-tools binary for %s" % NOBLE
    assert perf["version"] is None


@pytest.mark.parametrize("module_dir, tools_rel, found", [
    ("usr/lib/python3/dist-packages", "usr/sbin/execsnoop-bpfcc", True),  # Debian, Ubuntu
    ("usr/lib/python3.12/site-packages", "usr/share/bcc/tools/execsnoop", True),  # upstream, Fedora
    ("usr/lib/python3/dist-packages", None, False),  # python3-bpfcc without bpfcc-tools
])
def test_bcc(host, module_dir, tools_rel, found):
    host.write(module_dir + "/bcc/__init__.py", "")
    host.write(module_dir + "/bcc/version.py", "__version__ = '0.29.1'\n")
    if tools_rel:
        host.write(tools_rel, "#!/usr/bin/python3\n", mode=0o755)
    bcc = collect(host)["tools"]["bcc"]
    assert bcc == {"found": found, "python_module": "/%s/bcc" % module_dir, "version": "0.29.1",
                   "path": "/" + tools_rel if tools_rel else None,
                   "tools_dir": "/" + tools_rel.rsplit("/", 1)[0] if tools_rel else None}


def test_bcc_tools_without_module(host):
    host.write("usr/sbin/execsnoop-bpfcc", "#!/usr/bin/python3\n", mode=0o755)
    assert collect(host)["tools"]["bcc"]["found"] is False


def test_libbpf_tools(host):
    host.libbpf_tools("1:1.3.0-2build2")
    assert collect(host)["tools"]["libbpf-tools"] == {
        "found": True, "path": "/usr/sbin/execsnoop", "tools_dir": "/usr/sbin", "execsnoop": "/usr/sbin/execsnoop",
        "version": "1:1.3.0-2build2"}


@pytest.mark.parametrize("tool", ["execsnoop", "opensnoop"])
def test_libbpf_tools_with_their_suffixed_names(host, tool):
    # Debian 13 and Ubuntu 26.04: /usr/sbin/execsnoop-libbpf, opensnoop-libbpf, ...
    host.libbpf_tools("1.5.0-3", rel="usr/sbin/%s-libbpf" % tool)
    # A perf-tools script with the bare name is not libbpf-tools'.
    host.write("usr/sbin/execsnoop", "#!/bin/bash\n# perf-tools execsnoop\n", mode=0o755)
    assert collect(host)["tools"]["libbpf-tools"] == {
        "found": True, "path": "/usr/sbin/%s-libbpf" % tool, "tools_dir": "/usr/sbin",
        "execsnoop": "/usr/sbin/execsnoop-libbpf" if tool == "execsnoop" else None, "version": "1.5.0-3"}


def test_libbpf_tools_elf_without_dpkg_entry(host):
    host.write("usr/sbin/opensnoop", elf([".text"]), mode=0o755)
    tools = collect(host)["tools"]["libbpf-tools"]
    assert tools["found"] and tools["path"] == "/usr/sbin/opensnoop" and tools["version"] is None


def test_script_named_execsnoop_is_not_libbpf_tools(host):
    host.write("usr/sbin/execsnoop", "#!/bin/bash\n# perf-tools execsnoop\n", mode=0o755)
    assert collect(host)["tools"]["libbpf-tools"]["found"] is False


# The build, not the version, decides: Ubuntu 24.04's 0.36.0+repack lacks the
# option (whether a build that offers it has the probe, only a capture says).
@pytest.mark.parametrize("version, option, offered", [("0.29.3", False, False), ("0.31.0", True, True),
                                                      ("0.36.0", True, True), ("0.36.0", False, False)])
def test_sysdig_modern_bpf_option_when_the_build_offers_it(host, version, option, offered):
    host.sysdig(version, modern_bpf=option)
    sysdig = collect(host)["tools"]["sysdig"]
    assert sysdig["version"] == version
    assert sysdig["drivers"] == {"modern_bpf_option": offered, "kmod_built": False, "kmod_loaded": False}


def test_sysdig_kernel_module(host):
    host.sysdig(kmod=True)
    host.mkdir("sys/module/scap")
    drivers = collect(host)["tools"]["sysdig"]["drivers"]
    assert drivers["kmod_built"] is True and drivers["kmod_loaded"] is True


# -- setup's local facts, not-live probes, serialisation -------------------------------
def test_local_facts(host):
    headers = {"component": "headers", "unavailable": "no linux-headers package for 6.18.44"}
    debugfs = {"component": "debugfs", "mounts": ["/sys/kernel/debug", "/sys/kernel/tracing"]}
    host.local_facts("headers", headers)
    host.local_facts("debugfs", debugfs)
    host.write("etc/ansible/facts.d/other.fact", "{}")  # someone else's: not ours to read
    result = collect(host)
    assert result["setup"] == {"components": {"debugfs": debugfs, "headers": headers}}
    assert result["unreadable"] == []


def test_local_facts_malformed(host):
    host.local_facts("headers", '{"component": "headers", ')
    result = collect(host)
    assert result["setup"] is None
    assert len(result["unreadable"]) == 1
    assert result["unreadable"][0].startswith("/etc/ansible/facts.d/tracekit_headers.fact: not JSON (")


def test_no_live_probes_for_a_fake_root(host):
    result = collect(host)
    assert result["live"] is False
    assert result["kernel_probes"] == {"perf_hardware": None, "perf_software": None, "bpf_prog_load": None,
                                       "detail": "not the running host"}


def test_full_host_facts_are_json(tmp_path):
    result = facts.collect(str(full_host(tmp_path)))
    assert json.loads(json.dumps(result)) == result
    assert result["schema"] == facts.SCHEMA
    assert all(tool["found"] for tool in result["tools"].values())
    assert result["tracefs"]["readable"] and result["btf"]["vmlinux"] and result["debuginfo"]["vmlinux"]
    assert result["unreadable"] == []


def test_main_prints_facts_as_json(host, capsys):
    facts.main([str(host.root)])
    printed = json.loads(capsys.readouterr().out)
    assert printed["kernel"]["release"] == NOBLE and printed["live"] is False
