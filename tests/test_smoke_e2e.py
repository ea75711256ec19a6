"""
End-to-end: the real twistd wazzap, spoken to over real sockets.
"""


def test_two_users_chat(connect):
    """
    A public message from one user reaches the other, prefixed with the nickname.
    """
    alice = connect("alice")
    bob = connect("bob")
    alice.read_until("bob joined the chat")
    bob.send("hello alice")
    assert alice.read_until("hello alice") == "bob: hello alice"
