"""Planning a setup run: components, variables, the generated play."""

import pytest

from tracekit import setup
from tracekit.doctor import COMPONENTS
from tracekit.errors import UsageError


def test_available_components_are_roles_in_setup_order():
    available = setup.available_components()
    assert "debugfs" in available
    assert available == [c for c in COMPONENTS if c in available]


def test_every_component_of_the_issue_has_a_role():
    assert setup.available_components() == list(COMPONENTS)


def test_no_names_selects_everything_but_the_opt_in_symbols():
    assert setup.select_components([]) == [c for c in COMPONENTS if c != "dbgsym"]


@pytest.mark.parametrize("named, selected", [
    (["systemtap"], ["headers", "systemtap"]),
    (["bcc"], ["headers", "bcc"]),
    (["dbgsym"], ["ddebs", "dbgsym"]),
    (["perf", "debugfs"], ["debugfs", "perf"]),
])
def test_selection_adds_what_a_component_needs_in_setup_order(named, selected):
    assert setup.select_components(named) == selected


def test_unknown_component_names_the_valid_ones():
    with pytest.raises(UsageError, match=r"unknown component bogus; valid: debugfs"):
        setup.select_components(["debugfs", "bogus"])


@pytest.mark.parametrize("pairs, expected", [
    (["a=1"], {"a": 1}),
    (["flag=false", "name=web"], {"flag": False, "name": "web"}),
    (['urls=["x", "y"]'], {"urls": ["x", "y"]}),
])
def test_parse_vars(pairs, expected):
    assert setup.parse_vars(pairs) == expected


@pytest.mark.parametrize("bad", ["novalue", "=1", "not a name=1"])
def test_parse_vars_rejects(bad):
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        setup.parse_vars([bad])


def _steps(play):
    return [t for t in play["tasks"] if "block" in t]


def test_playbook_runs_each_component_in_its_own_rescued_block():
    (play,) = setup.build_playbook(["debugfs"])
    assert play["hosts"] == "{{ tracekit_hosts | default('all') }}" and play["become"] is True
    (step,) = _steps(play)
    assert step["tags"] == ["debugfs"]
    (include,) = step["block"]
    assert include["ansible.builtin.include_role"] == {"name": "debugfs", "apply": {"tags": ["debugfs"]}}
    assert "_tracekit_failed_components" in step["rescue"][0]["ansible.builtin.set_fact"]
    # debugfs alone needs no distribution check; the summary fails the host if a block failed.
    assert [t["name"] for t in play["tasks"] if "block" not in t] == ["Summary | every component must have succeeded"]


def test_packages_of_all_package_components_go_in_one_step_after_the_sources():
    (play,) = setup.build_playbook(["debugfs", "ddebs", "headers", "perf", "bpftrace"])
    steps = _steps(play)
    assert [s["name"] for s in steps] == ["Component %s" % c for c in
                                          ("debugfs", "ddebs", "packages", "headers", "perf", "bpftrace")]
    packages = steps[2]["block"][0]
    # The probe toolchain, and what roles before this step left to it (ddebs'
    # debuginfod client), join the same transaction.
    assert packages["vars"] == {"tracekit_packages_components": ["headers", "perf", "bpftrace"],
                                "tracekit_packages_extra":
                                    "{{ ['gcc', 'libc6-dev'] + _tracekit_deferred_packages | default([]) }}"}
    assert steps[1]["block"][0]["vars"] == {"tracekit_ddebs_install_client": False}
    assert steps[2]["tags"] == ["headers", "perf", "bpftrace"]
    assert play["tasks"][0]["name"] == "Set up platform"


def test_summary_of_a_recorded_run_has_the_documented_shape(data_dir):
    """setup's --json document, made from the events of a real run
    (tests/data/ansible-events/setup.json: alpha fine, beta's debugfs
    failing, gamma unreachable), validates against its schema."""
    import json

    import jsonschema

    from tracekit.paths import schema_file

    hosts, current = {}, {"component": "-"}
    for event in json.loads((data_dir / "ansible-events/setup.json").read_text()):
        setup._account(hosts, event, current)
    # ansible-runner's status and rc of that run.
    document = setup.SetupResult("failed", 2, hosts).to_dict()
    document["verify"] = None
    jsonschema.validate(document, json.loads(schema_file("setup.schema.json").read_text()))
    assert sorted(document["hosts"]) == ["alpha", "beta", "gamma"]
    assert document["hosts"]["gamma"]["unreachable"] is True
    assert [f["component"] for f in document["hosts"]["beta"]["failures"]] == ["debugfs", "-"]
    assert {"debugfs", "packages", "bpftrace"} <= set(document["hosts"]["alpha"]["components"])
    assert document["hosts"]["alpha"]["failures"] == []
