"""Planning a setup run: components, variables, the generated play."""

import pytest

from tracekit import setup
from tracekit.doctor import COMPONENTS
from tracekit.errors import UsageError


def test_available_components_are_roles_in_setup_order():
    available = setup.available_components()
    assert "debugfs" in available
    assert available == [c for c in COMPONENTS if c in available]


def test_no_names_selects_every_available_component():
    assert setup.select_components([]) == setup.available_components()


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


def test_playbook_has_one_tagged_role_per_component():
    (play,) = setup.build_playbook(["debugfs"])
    assert play["hosts"] == "all" and play["become"] is True
    assert play["roles"] == [{"role": "debugfs", "tags": ["debugfs"]}]
