"""
The config file of C{twistd wazzap --config FILE}: TOML whose keys are the
long options of the command line (C{max-line-bytes = 4096},
C{approve-joins = true}, C{port = [5555, "tcp6:5555"]}).

This module only reads the file and turns each value into the text the
command line would carry; L{wazzap.app.tap.Options} hands that text to the very
checks of the command line, so an option added there is a key here too,
and a value is refused here exactly when it would be refused there.
"""

import sys

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 has no tomllib; tomli is the same parser.
    import tomli as tomllib


class ConfigError(Exception):
    """
    The config file cannot be used: the message is one line that names the
    file and, where there is one, the key.
    """


def read_config(path):
    """
    The table of the TOML file at C{path}.
    """
    try:
        with open(path, "rb") as config_file:
            return tomllib.load(config_file)
    except OSError as e:
        reason = (e.strerror or str(e)).lower()
        raise ConfigError("--config %s: cannot read it: %s" % (path, reason))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError("%s is not valid TOML: %s" % (path, e))


def option_values(key, value, flag, repeatable):
    """
    What the command line would carry for C{key = value}: the arguments of
    each time the option is given (L{None} for a flag given), one for most
    options, one for each item of a list for those that may be repeated;
    none for a flag that is false.
    """
    if flag:
        if not isinstance(value, bool):
            raise ConfigError("%s must be true or false, not %s" % (key, _toml(value)))
        return [None] if value else []
    if repeatable and isinstance(value, list):
        return [_argument(key, item) for item in value]
    return [_argument(key, value)]


def _argument(key, value):
    # bool is an int in Python, but "true" is no number nor name of a file.
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ConfigError("%s must be a number or a string, not %s" % (key, _toml(value)))


def _toml(value):
    """
    C{value} as the config file wrote it, near enough to find it there.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)
