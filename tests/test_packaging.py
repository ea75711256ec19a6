"""
What `pip install .` ships: setup.cfg lists its packages by hand, so a new
package in the tree must be listed there or the installed server cannot
import it (the tests, run from the checkout, would never notice).
"""

import configparser

from tests.support import REPO


def test_every_package_in_the_tree_is_installed():
    """Each folder of wazzap/ with an __init__.py is one of setup.cfg's packages, and no other is."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    listed = set(config["options"]["packages"].split())
    in_tree = {
        ".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "wazzap").rglob("__init__.py")
    }
    assert in_tree == listed - {"twisted.plugins"}
