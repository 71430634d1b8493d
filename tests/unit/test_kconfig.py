"""tracekit.agent.kconfig: reading the three real distribution configs and
finding a config on a host."""

import gzip
import hashlib
import os
import re

import pytest

from tests.unit.fakehost import DISTROS, KCONFIG_DIR, FakeHost
from tracekit.agent import kconfig

NOBLE = DISTROS["ubuntu-noble"]
BANNER = "#\n# Automatically generated file; DO NOT EDIT.\n# Linux/x86 6.8.12 Kernel Configuration\n#\n"


def config_text(name):
    return gzip.decompress((KCONFIG_DIR / name).read_bytes()).decode()


@pytest.fixture(params=sorted(DISTROS), scope="module")
def distro_config(request):
    spec = DISTROS[request.param]
    options, complete = kconfig.parse(config_text(spec["config"]))
    return request.param, kconfig.KernelConfig(options, spec["config"], complete)


@pytest.fixture
def host(tmp_path):
    return FakeHost(tmp_path / "root", NOBLE["release"])


def load(host):
    return kconfig.load(str(host.root), host.release)


# -- the real configs -----------------------------------------------------------
def test_fixtures_are_the_documented_configs():
    readme = (KCONFIG_DIR / "README.md").read_text()
    documented = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+\.config)$", readme, re.M))
    assert len(documented) == 3
    for name, digest in documented.items():
        data = gzip.decompress((KCONFIG_DIR / (name + ".gz")).read_bytes())
        assert hashlib.sha256(data).hexdigest() == digest, name


TRACING_OPTIONS_ALL_DISTROS = {
    "KPROBES": "y", "KPROBE_EVENTS": "y", "KRETPROBES": "y", "UPROBES": "y", "UPROBE_EVENTS": "y",
    "FTRACE": "y", "FUNCTION_TRACER": "y", "FUNCTION_GRAPH_TRACER": "y", "FTRACE_SYSCALLS": "y",
    "TRACEPOINTS": "y", "BPF_SYSCALL": "y", "BPF_EVENTS": "y", "BPF_JIT": "y", "DEBUG_INFO_BTF": "y",
    "DEBUG_INFO": "y", "DEBUG_FS": "y", "MODULES": "y", "MODULE_SIG": "y", "MODULE_SIG_ALL": "y",
    "SECURITY_LOCKDOWN_LSM": "y", "SECURITY_LOCKDOWN_LSM_EARLY": "y", "LOCK_DOWN_KERNEL_FORCE_NONE": "y",
    # explicitly "# CONFIG_... is not set" in all three
    "MODULE_SIG_FORCE": "n", "LOCK_DOWN_KERNEL_FORCE_INTEGRITY": "n",
    "LOCK_DOWN_KERNEL_FORCE_CONFIDENTIALITY": "n", "IKCONFIG": "n", "DEBUG_INFO_DWARF4": "n",
}


def test_real_config_is_complete_and_has_the_tracing_options(distro_config):
    _, config = distro_config
    assert config.complete
    assert len(config.options) > 8000
    for name, value in TRACING_OPTIONS_ALL_DISTROS.items():
        assert config.get(name) == value, name
        assert config.get("CONFIG_" + name) == value, name


DISTRO_DIFFERENCES = {
    # option: (debian-bookworm, ubuntu-jammy, ubuntu-noble)
    "IKHEADERS": ("n", "m", "m"),
    "HZ": ("250", "250", "1000"),
    "BPF_JIT_ALWAYS_ON": ("n", "y", "y"),
    "FPROBE": ("n", "n", "y"),  # jammy (5.15) predates it: absent from a complete config
    "DEBUG_INFO_DWARF5": ("n", "y", "y"),
    "MODULE_COMPRESS_ZSTD": ("n", "n", "y"),
    "MODULE_SIG_HASH": ("sha256", "sha512", "sha512"),  # quotes stripped
    "LSM": ("landlock,lockdown,yama,loadpin,safesetid,integrity,apparmor,selinux,smack,tomoyo,bpf",
            "landlock,lockdown,yama,integrity,apparmor", "landlock,lockdown,yama,integrity,apparmor"),
    "CC_VERSION_TEXT": ("gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0",
                        "gcc (Ubuntu 11.4.0-1ubuntu1~22.04.3) 11.4.0",
                        "x86_64-linux-gnu-gcc-13 (Ubuntu 13.3.0-6ubuntu2~24.04.1) 13.3.0"),
    "SYSTEM_TRUSTED_KEYS": ("", "debian/canonical-certs.pem", "debian/canonical-certs.pem"),
}


def test_real_config_distro_differences(distro_config):
    name, config = distro_config
    column = ("debian-bookworm", "ubuntu-jammy", "ubuntu-noble").index(name)
    for option, values in DISTRO_DIFFERENCES.items():
        assert config.get(option) == values[column], option


def test_enabled_treats_module_as_enabled_and_unset_as_disabled(distro_config):
    name, config = distro_config
    assert config.enabled("KPROBES") is True
    assert config.enabled("MODULE_SIG_FORCE") is False
    assert config.enabled("IKHEADERS") is (name != "debian-bookworm")  # =m on Ubuntu
    assert config.enabled("NO_SUCH_OPTION_EVER") is False


def test_explicitly_unset_and_absent_options_both_read_n():
    options, _ = kconfig.parse(config_text(DISTROS["ubuntu-jammy"]["config"]))
    noble, _ = kconfig.parse(config_text(NOBLE["config"]))
    # noble says "# CONFIG_DEBUG_INFO_NONE is not set"; jammy's kernel has no such option
    assert noble["CONFIG_DEBUG_INFO_NONE"] == "n"
    assert "CONFIG_DEBUG_INFO_NONE" not in options and "CONFIG_FPROBE" not in options
    jammy = kconfig.KernelConfig(options, complete=True)
    assert jammy.get("DEBUG_INFO_NONE") == "n" and jammy.get("FPROBE") == "n"


# -- parse ------------------------------------------------------------------------
def test_parse_values_comments_and_completeness():
    text = BANNER + ('CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\nCONFIG_D="quoted value"\n'
                     'CONFIG_E=0x10\n\n# Some menu\n#\n   CONFIG_F=y   \n# end of menu\n')
    options, complete = kconfig.parse(text)
    assert options == {"CONFIG_A": "y", "CONFIG_B": "m", "CONFIG_C": "n", "CONFIG_D": "quoted value",
                       "CONFIG_E": "0x10", "CONFIG_F": "y"}
    assert complete is True


@pytest.mark.parametrize("text", [
    BANNER + "CONFIG_A=y",  # no trailing newline: cut off
    "CONFIG_A=y\n",  # no banner: a fragment, not a kconfig-written file
    "\n".join(["#"] * 200) + "\n" + BANNER + "CONFIG_A=y\n",  # banner not at the start
], ids=["no-newline", "no-banner", "late-banner"])
def test_parse_incomplete(text):
    options, complete = kconfig.parse(text)
    assert options == {"CONFIG_A": "y"}
    assert complete is False
    assert kconfig.KernelConfig(options, complete=complete).get("B") is None


# -- load: where the config is found ----------------------------------------------
LOCATIONS = ("proc", "boot", "modules", "build")
SOURCES = ("/proc/config.gz", "/boot/config-{r}", "/lib/modules/{r}/config", "/lib/modules/{r}/build/.config")


@pytest.mark.parametrize("first", range(len(LOCATIONS)), ids=LOCATIONS)
def test_search_order(host, first):
    for where in LOCATIONS[first:]:
        host.kconfig(BANNER + 'CONFIG_WHERE="%s"\n' % where, where=where)
    config = load(host)
    assert config.source == SOURCES[first].format(r=host.release)
    assert config.get("WHERE") == LOCATIONS[first]
    assert config.complete and config.error is None


def test_real_config_from_proc_config_gz(host):
    host.kconfig(NOBLE["config"], where="proc")
    config = load(host)
    assert config.source == "/proc/config.gz"
    assert config.complete and config.error is None
    assert config.get("UPROBE_EVENTS") == "y" and config.get("HZ") == "1000"


def test_config_of_another_release_is_not_used(host):
    host.kconfig(NOBLE["config"], where="boot")
    config = kconfig.load(str(host.root), "6.8.0-40-generic")
    assert config.source is None and config.get("KPROBES") is None
    assert config.error == "no kernel config found"


def test_unknown_release_looks_only_where_no_release_is_needed(host):
    # With --root, the host's own release must not stand in for the image's.
    host.release = os.uname().release
    host.kconfig(BANNER + "CONFIG_RUNNING=y\n", where="boot")
    assert kconfig.load(str(host.root), None).get("RUNNING") is None
    host.kconfig(BANNER + "CONFIG_RUNNING=m\n", where="proc")
    assert kconfig.load(str(host.root), None).get("RUNNING") == "m"


def test_truncated_gzip_is_an_error_and_the_next_location_is_tried(host):
    path = host.kconfig(NOBLE["config"], where="proc")
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])

    config = load(host)
    assert config.source is None and config.get("KPROBES") is None
    assert config.error == "/proc/config.gz: Compressed file ended before the end-of-stream marker was reached"

    host.kconfig(NOBLE["config"], where="boot")
    config = load(host)
    assert config.source == "/boot/config-%s" % host.release
    assert config.get("KPROBES") == "y" and config.complete


def test_plain_text_at_the_gzip_location_is_an_error(host):
    host.write("proc/config.gz", BANNER + "CONFIG_KPROBES=y\n")
    config = load(host)
    assert config.source is None
    assert config.error.startswith("/proc/config.gz: Not a gzipped file")


def test_truncated_plain_config(host):
    text = config_text(NOBLE["config"])
    cut = text.index("CONFIG_DEBUG_INFO_BTF=y") + len("CONFIG_DEB")
    host.kconfig(text[:cut], where="boot")
    config = load(host)
    assert config.source == "/boot/config-%s" % host.release
    assert config.complete is False
    assert config.error == "/boot/config-%s looks truncated" % host.release
    # before the cut: known, including explicitly unset options
    assert config.get("KPROBES") == "y" and config.get("MODULE_SIG_FORCE") == "n"
    # after the cut (and the cut line itself): unknown, not "n"
    for name in ("DEBUG_INFO_BTF", "FTRACE", "UPROBE_EVENTS", "NO_SUCH_OPTION_EVER"):
        assert config.get(name) is None, name
        assert config.enabled(name) is None, name


def test_directory_in_place_of_the_config_is_an_error(host):
    host.mkdir("boot/config-%s" % host.release)
    config = load(host)
    assert config.source is None and config.get("KPROBES") is None
    assert config.error == "/boot/config-%s: Is a directory" % host.release


def test_errors_of_every_location_are_reported_together(host):
    host.mkdir("proc/config.gz")
    host.write("boot/config-%s" % host.release, "not a kernel config\n")
    config = load(host)
    assert config.error == "/proc/config.gz: Is a directory; /boot/config-%s: no CONFIG_ lines" % host.release


def test_unreadable_location_is_skipped_for_a_good_one(host):
    host.mkdir("proc/config.gz")
    host.kconfig(NOBLE["config"], where="modules")
    config = load(host)
    assert config.source == "/lib/modules/%s/config" % host.release
    assert config.get("KPROBE_EVENTS") == "y"


def test_no_config_anywhere(host):
    config = load(host)
    assert config.error == "no kernel config found"
    assert config.source is None and config.complete is False and config.options == {}
    assert config.get("KPROBES") is None and config.enabled("KPROBES") is None
