"""Which tracing state a verify run answers for, on a kernel other runs share."""

import os


def test_other_tracekit_runs_in_flight_are_not_this_runs_state_change():
    from tracekit.agent import checks

    mine, other = "0123abcd", "fedc9876"
    before = {"instances": ["tk_inst_%s_1" % other, "user_inst"], "uprobe_events": "p:tracekit/tk_uprobe_%s_2 /t:0x1" % other,
              "kprobe_events": "", "tracing_on": "1"}
    after = {"instances": ["user_inst", "tk_inst_%s_3" % mine], "uprobe_events": "", "kprobe_events": "",
             "tracing_on": "1"}
    b, a = (checks.without_other_runs(s, mine) for s in (before, after))
    assert b["instances"] == ["user_inst"] and b["uprobe_events"] == ""
    # Our own leftover instance still shows as a change.
    assert a["instances"] == ["user_inst", "tk_inst_%s_3" % mine]


def test_the_global_ring_buffer_allocated_on_first_use_is_no_state_change():
    from tracekit.agent import verify

    # Measured in the kernel lab (Ubuntu 6.8): the function_graph check borrowed
    # the idle global tracer, and the kernel allocated the global ring buffer.
    before = {"buffer_size_kb": "7 (expanded: 1408)\n", "current_tracer": "nop\n"}
    assert verify.state_changes(before, {"buffer_size_kb": "1410\n", "current_tracer": "nop\n"}) == {}
    # A configured size that really changed still shows, and so does anything else.
    assert set(verify.state_changes(before, {"buffer_size_kb": "4096\n", "current_tracer": "nop\n"})) \
        == {"buffer_size_kb"}
    assert set(verify.state_changes({"buffer_size_kb": "1408\n"}, {"buffer_size_kb": "1410\n"})) \
        == {"buffer_size_kb"}
    assert set(verify.state_changes(before, {"buffer_size_kb": "1410\n", "current_tracer": "function\n"})) \
        == {"current_tracer"}


def test_runs_in_flight_by_their_tokens():
    from tracekit.agent import checks

    state = {"instances": ["tk_inst_0123abcd_1", "user_inst"],
             "uprobe_events": "p:tk_probe_fedc9876_2/tk_work /t:0x1179 n=%di:s32\np:probe_t/x /t:0x1",
             "kprobe_events": None, "tracing_on": "1"}
    assert checks.run_tokens(state) == {"0123abcd", "fedc9876"}
    trimmed = checks.without_runs(state, {"fedc9876"}.__contains__)
    # Only that run's probe goes; the other run's instance and everything else stays.
    assert trimmed["uprobe_events"] == "p:probe_t/x /t:0x1"
    assert trimmed["instances"] == ["tk_inst_0123abcd_1", "user_inst"] and trimmed["tracing_on"] == "1"


def test_session_debuginfod_is_passed_to_the_tools_and_taken_back(monkeypatch):
    from tracekit.agent import verify as agent_verify
    monkeypatch.delenv("DEBUGINFOD_URLS", raising=False)
    facts = {"debuginfod": {"urls": ["https://d.example"], "sources": ["/etc/environment"]}}
    restore = agent_verify.session_debuginfod(facts)
    assert os.environ["DEBUGINFOD_URLS"] == "https://d.example"
    restore()
    assert "DEBUGINFOD_URLS" not in os.environ
    # Only files that sessions do not read: nothing is set.
    agent_verify.session_debuginfod({"debuginfod": {"urls": ["u"], "sources": ["/etc/debuginfod/x.urls"]}})()
    assert "DEBUGINFOD_URLS" not in os.environ
