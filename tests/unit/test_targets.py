"""The diff job's account/region lookup prints exactly two output lines, or fails naming the environment."""

from __future__ import annotations

from stacks import targets


def test_prints_account_and_region_as_output_lines(capsys):
    assert targets.main(["staging"]) == 0
    assert capsys.readouterr().out == "account=222222222222\nregion=us-east-1\n"


def test_unknown_environment_is_named(capsys):
    assert targets.main(["qa"]) == 2
    captured = capsys.readouterr()
    assert "unknown environment(s) qa" in captured.err
    assert captured.out == ""


def test_usage_without_an_environment(capsys):
    assert targets.main([]) == 2
    assert "usage" in capsys.readouterr().err
