"""What the CLI says about plugins: a broken one on every command, a plugin command's crash
naming the plugin, a command that cannot shadow a core one."""
from __future__ import annotations

import pytest

from mmtk.cli import main
from mmtk.plugins import reset_plugin_system

COMMANDS_PLUGIN = '''
import mmtk

def configure(parser):
    parser.add_argument("--how", default="crash")

def run(args):
    if args.how == "crash":
        raise ZeroDivisionError("division by zero in the plugin")
    if args.how == "user-error":
        raise mmtk.DataError("file x.csv: column 'id' is missing; add it")
    if args.how == "exit":
        raise SystemExit(5)
    if args.how == "ctrl-c":
        raise KeyboardInterrupt
    return 0

@mmtk.hookimpl
def mmtk_register_commands(register):
    register("greet", "says hello", configure, run)
    register("run", "tries to replace mmtk run", configure, run)
'''


@pytest.fixture
def plugins_dir(tmp_path):
    (tmp_path / "cmds.py").write_text(COMMANDS_PLUGIN)
    (tmp_path / "broken.py").write_text("import not_installed_anywhere\n")
    reset_plugin_system()
    yield ["--plugins-dir", str(tmp_path)]
    reset_plugin_system()


@pytest.mark.parametrize("argv", [
    ["list", "components", "--kind", "head"],
    ["show", "component", "head/mlp"],
    ["greet", "--how", "ok"],
    ["list", "recipes", "--json"],
])
def test_a_broken_plugin_is_mentioned_in_one_line_on_every_command(plugins_dir, capsys, argv):
    assert main([*plugins_dir, *argv]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "local:broken" in line]
    assert len(lines) == 1
    assert lines[0].startswith("mmtk: warning: plugin 'local:broken' failed to load and is skipped: "
                               "ModuleNotFoundError: No module named 'not_installed_anywhere'")


def test_also_on_help_and_usage_errors(plugins_dir, capsys):
    with pytest.raises(SystemExit):
        main([*plugins_dir, "--help"])
    assert "local:broken" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*plugins_dir, "lsit"])
    assert "local:broken" in capsys.readouterr().err


def test_list_plugins_shows_it_in_the_table_not_twice(plugins_dir, capsys):
    assert main([*plugins_dir, "list", "plugins"]) == 0
    captured = capsys.readouterr()
    assert "local:broken" in captured.out and "local:broken" not in captured.err


def test_plugin_command_crash_names_command_and_plugin(plugins_dir, capsys):
    assert main([*plugins_dir, "greet"]) == 2
    err = capsys.readouterr().err
    assert ("error: command 'greet' of plugin 'local:cmds' failed: ZeroDivisionError: division "
            "by zero in the plugin. This is a bug in the plugin") in err
    assert "Traceback" not in err
    assert main([*plugins_dir, "--traceback", "greet"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_plugin_command_user_error_exit_status_and_ctrl_c(plugins_dir, capsys):
    assert main([*plugins_dir, "greet", "--how", "user-error"]) == 2
    assert "error: file x.csv: column 'id' is missing; add it" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:  # the plugin's own exit status is kept
        main([*plugins_dir, "greet", "--how", "exit"])
    assert info.value.code == 5
    assert main([*plugins_dir, "greet", "--how", "ctrl-c"]) == 130
    err = capsys.readouterr().err
    assert "interrupted" in err and "--resume" not in err  # resuming is for mmtk run


def test_a_plugin_cannot_replace_a_core_command(plugins_dir, capsys):
    with pytest.raises(SystemExit):
        main([*plugins_dir, "run", "--how", "crash"])  # core `run` has no --how option
    err = capsys.readouterr().err
    assert ("plugin 'local:cmds' registers the command 'run', which is a core command; "
            "the plugin's is ignored") in err
