"""
The config file (C{--config}) and the MOTD file (C{--motd}), parsed into
the options of C{twistd wazzap}: the same keys and checks as the command
line, which wins; one line naming the key for anything wrong.
"""

import pytest

from tests.doubles import Connection, make_factory
from tests.support import REPO
from wazzap.app import tap
from wazzap.app.config import read_config
from wazzap.app.motd import MAX_MOTD_BYTES, read_motd


def parsed(*arguments):
    options = tap.Options()
    options.parseOptions(list(arguments))
    return options


def refusal(*arguments):
    """
    The one line twistd would print for C{arguments}.
    """
    with pytest.raises(SystemExit) as raised:
        parsed(*arguments)
    message = str(raised.value)
    assert "\n" not in message
    return message


@pytest.fixture
def config(tmp_path):
    """
    Write a config file of the given TOML text; return its --config option.
    """

    def write(text, name="wazzap.toml"):
        path = tmp_path / name
        path.write_text(text)
        return "--config=%s" % (path,)

    return write


def test_file_gives_every_kind_of_option(config, tmp_path):
    """Numbers, strings, flags and lists in the file become the options the command line makes."""
    options = parsed(
        config(
            'max-line-bytes = 1000\nflood-rate = 2.5\ndb = "%s"\napprove-joins = true\n'
            'port = [6000, "tcp6:6001"]\nadmin = ["boss"]\nroom = "news"\n'
            % (tmp_path / "chat.sqlite3",)
        )
    )
    assert options["max-line-bytes"] == 1000
    assert options["flood-rate"] == 2.5
    assert options["db"] == str(tmp_path / "chat.sqlite3")
    assert options["approve-joins"]
    assert options["port"] == ["tcp:6000", "tcp6:6001"]
    assert options["admin"] == ["boss"]
    assert options["room"] == ["#news"]
    assert options.limits().max_line_bytes == 1000


def test_command_line_wins(config):
    """An option on the command line beats the file's, a list replacing the file's list."""
    options = parsed(
        "--max-line-bytes=2000",
        config('max-line-bytes = 1000\nport = [6000, 6001]\nadmin = ["boss"]\n'),
        "-p",
        "7000",
    )
    assert options["max-line-bytes"] == 2000
    assert options["port"] == ["tcp:7000"]
    assert options["admin"] == ["boss"]


def test_false_flag_leaves_it_off(config):
    """A flag set to false in the file is off."""
    assert not parsed(config("approve-joins = false\n"))["approve-joins"]


def test_without_a_file_the_defaults_hold():
    """No --config: the options are the command line's and the defaults."""
    options = parsed()
    assert options["config"] is None
    assert options["motd"] is None
    assert options["port"] == ["tcp:5555"]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("max-line-bytes = 10\n", "max-line-bytes must be at least 64, not 10"),
        ("replay = 5000\n", "replay must be at most 1000, not 5000"),
        ('max-line-bytes = "lots"\n', "max-line-bytes must be a number, not 'lots'"),
        ("max-line-bytes = true\n", "max-line-bytes must be a number or a string, not true"),
        ('approve-joins = "yes"\n', "approve-joins must be true or false, not 'yes'"),
        ('port = ["nonsense:1"]\n', "port 'nonsense:1' is not a port or endpoint"),
        ('admin = ["not valid!"]\n', "admin 'not valid!': a nickname is"),
        ('room = "bad room"\n', "room: "),
        ("[limits]\nmax-line-bytes = 100\n", "unknown key 'limits'"),
    ],
)
def test_bad_value_is_one_line_naming_the_key(config, text, expected):
    """A bad value in the file is refused in one line that names the file and the key."""
    message = refusal(config(text))
    assert message.startswith("twistd wazzap: ")
    assert "wazzap.toml: " + expected in message


@pytest.mark.parametrize("key", ["max_line_bytes", "maxlinebytes", "config", "help", "verbose"])
def test_unknown_key_is_refused(config, key):
    """A key that is no long option (or is --config itself) is refused, named."""
    message = refusal(config("%s = 1\n" % (key,)))
    assert "unknown key %r" % (key,) in message


def test_help_is_given_whatever_the_file_says(config, capsys):
    """--help shows the help even beside a broken config file."""
    with pytest.raises(SystemExit) as raised:
        parsed(config("max-line-bytes = \n"), "--help")
    assert raised.value.code in (0, None)
    assert "--config=" in capsys.readouterr().out


def test_broken_toml_is_one_line(config):
    """A file that is not TOML is refused in one line that says where."""
    message = refusal(config("max-line-bytes = \n"))
    assert "is not valid TOML" in message and "line 1" in message


def test_missing_config_file_is_one_line(tmp_path):
    """A config file that cannot be read is refused in one line."""
    message = refusal("--config", str(tmp_path / "nowhere.toml"))
    assert "nowhere.toml: cannot read it: no such file or directory" in message


def test_combination_of_file_and_command_line_is_checked(config):
    """Checks across options see the file's values and the command line's together."""
    message = refusal(config("max-rooms = 2\n"), "--room=a", "--room=b")
    assert "--max-rooms 2 is fewer than the 3 rooms" in message


def test_motd_is_read_and_sanitised(tmp_path):
    """The MOTD's lines lose every terminal control, and blank lines at its ends."""
    path = tmp_path / "motd.txt"
    path.write_bytes(b"\n\x1b[2J\x1b[31mWelcome\x1b[0m\tto \xffus\r\n\nbe \x07nice\n\n")
    options = parsed("--motd", str(path))
    assert options["motd"].lines == ("Welcome to \ufffdus", "", "be nice")


def test_motd_from_the_config_file(config, tmp_path):
    """The MOTD may be named in the config file."""
    path = tmp_path / "motd.txt"
    path.write_text("hello\n")
    assert parsed(config('motd = "%s"\n' % (path,)))["motd"].lines == ("hello",)


def test_missing_motd_is_one_line(tmp_path):
    """A MOTD file that cannot be read stops the start in one line."""
    message = refusal("--motd", str(tmp_path / "motd.txt"))
    expected = "--motd %s: cannot read it: no such file or directory" % (tmp_path / "motd.txt",)
    assert expected in message


def test_huge_motd_is_refused(tmp_path):
    """A MOTD past its limit is refused rather than sent to every user."""
    path = tmp_path / "motd.txt"
    path.write_text("x" * (MAX_MOTD_BYTES + 1))
    assert "is longer than %d bytes" % (MAX_MOTD_BYTES,) in refusal("--motd", str(path))


def test_motds_compare_by_what_users_see(tmp_path):
    """Two readings of a file are equal until its text changes."""
    path = tmp_path / "motd.txt"
    path.write_text("one\n")
    first = read_motd(str(path))
    assert read_motd(str(path)) == first
    path.write_text("two\n")
    assert read_motd(str(path)) != first


def test_motd_follows_the_welcome():
    """Whoever joins is shown the MOTD right after the welcome, as server notices."""
    factory = make_factory()
    factory.motd_lines = ("Rules: be nice", "", "See you")
    connection = Connection(factory)
    connection.lines()
    connection.send("alice")
    lines = connection.lines()
    assert lines[0].startswith("[Server] Welcome, alice!")
    assert lines[1:4] == ["[Server] Rules: be nice", "[Server] ", "[Server] See you"]


def test_example_config_names_every_option_at_its_default(tmp_path):
    """contrib/wazzap.toml has a key for every option, each at its default but motd and db."""
    example = REPO / "contrib" / "wazzap.toml"
    text = example.read_text()
    # An option unset by default (TOML has no null) is shown commented out.
    commented = {key for key in tap.Options().config_keys() if "\n# %s = " % (key,) in text}
    missing = tap.Options().config_keys() - set(read_config(example)) - commented
    assert not missing, "add these options to contrib/wazzap.toml: %s" % (sorted(missing),)
    motd = tmp_path / "motd.txt"
    motd.write_text("hello\n")
    overrides = ["--motd=%s" % (motd,), "--db=%s" % (tmp_path / "db")]
    from_example = parsed("--config=%s" % (example,), *overrides)
    defaults = parsed(*overrides)
    for key in tap.Options().config_keys():
        assert from_example[key] == defaults[key], key
