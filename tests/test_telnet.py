"""
Telnet on the byte stream: commands cut out and answered as Debian's telnet
client needs, Ctrl+C as a way out, passwords not echoed, and nothing of it
for nc users.
"""

from tests.doubles import Connection, joined, make_factory
from wazzap.listeners.line.telnet import Telnet

#: What Debian's (netkit) telnet sends for Ctrl+C: IAC IP IAC DO TIMING-MARK.
CTRL_C = b"\xff\xf4\xff\xfd\x06"
#: What it sends for Ctrl+] then "send brk": IAC BRK.
SEND_BRK = b"\xff\xf3"
WILL_TIMING_MARK = b"\xff\xfb\x06"
WILL_ECHO, WONT_ECHO = b"\xff\xfb\x01", b"\xff\xfc\x01"
DO_ECHO, DONT_ECHO = b"\xff\xfd\x01", b"\xff\xfe\x01"


def receive_all(telnet, pieces):
    """
    Feed C{pieces} to C{telnet}; return the data, the answers and whether it was interrupted.
    """
    results = [telnet.receive(piece) for piece in pieces]
    return (
        b"".join(data for data, _, _ in results),
        b"".join(answer for _, answer, _ in results),
        any(interrupted for _, _, interrupted in results),
    )


# The parser


def test_ctrl_c_is_an_interrupt_and_the_timing_mark_is_answered():
    """IAC IP IAC DO TM interrupts, leaves no data and is answered with WILL TM."""
    assert Telnet().receive(CTRL_C) == (b"", WILL_TIMING_MARK, True)


def test_break_is_an_interrupt():
    """IAC BRK interrupts too."""
    assert Telnet().receive(SEND_BRK) == (b"", b"", True)


def test_commands_split_across_reads_are_recognised():
    """A command cut at any byte between two reads is still one command."""
    stream = b"hi" + CTRL_C + b" there\r\n"
    for cut in range(len(stream) + 1):
        assert receive_all(Telnet(), [stream[:cut], stream[cut:]]) == (
            b"hi there\r\n", WILL_TIMING_MARK, True
        )


def test_other_options_are_refused_once_without_loops():
    """DO x gets WONT x, WILL x gets DONT x, and refusals of what is off get no answer."""
    telnet = Telnet()
    assert telnet.receive(b"\xff\xfd\x03\xff\xfb\x1f") == (b"", b"\xff\xfc\x03\xff\xfe\x1f", False)
    assert telnet.receive(b"\xff\xfc\x03\xff\xfe\x1f\xff\xfc\x01\xff\xfe\x01") == (b"", b"", False)


def test_iac_iac_is_a_data_byte_and_other_0xff_stay_as_invalid_bytes():
    """IAC IAC stands for 0xFF; a 0xFF that starts no command is kept, as invalid UTF-8."""
    telnet = Telnet()
    assert telnet.receive(b"a\xff\xffb\xffAc\n") == (b"a\xffb\xffAc\n", b"", False)
    assert not telnet.spoken


def test_no_command_swallows_a_line_ending():
    """\\xff\\xfe before a line ending is two invalid bytes, and the line still ends."""
    telnet = Telnet()
    assert telnet.receive(b"x \xff\xfe\n") == (b"x \xff\xfe\n", b"", False)
    assert telnet.receive(b"y\xff\xfa\x18\x00junk\nz\n") == (b"y\nz\n", b"", False)


def test_subnegotiation_is_skipped():
    """IAC SB ... IAC SE is cut out whole, even across reads."""
    assert receive_all(Telnet(), [b"a\xff\xfa\x1f\x00P", b"\x00\x18\xff", b"\xf0b"]) == (
        b"ab", b"", False
    )


def test_echo_is_offered_once_and_acknowledged_without_answers():
    """Hiding input sends WILL ECHO once; the client's DO ECHO is an answer, not a question."""
    telnet = Telnet()
    telnet.receive(b"\xff\xf1")  # a NOP: this peer speaks telnet
    assert telnet.hide_input() == WILL_ECHO
    assert telnet.hide_input() == b""
    assert telnet.receive(DO_ECHO) == (b"", b"", False)
    assert telnet.show_input() == WONT_ECHO
    assert telnet.receive(DONT_ECHO) == (b"", b"", False)
    assert telnet.show_input() == b""


def test_echo_wishes_while_an_answer_is_awaited_are_queued():
    """Showing, then hiding input again before the client answers sends nothing more; it ends hidden."""
    telnet = Telnet()
    telnet.receive(b"\xff\xf1")
    assert telnet.hide_input() == WILL_ECHO
    assert telnet.receive(DO_ECHO)[1] == b""
    assert telnet.show_input() == WONT_ECHO
    assert telnet.hide_input() == b""  # queued: the client has not answered WONT yet
    assert telnet.receive(DONT_ECHO)[1] == WILL_ECHO
    assert telnet.receive(DO_ECHO)[1] == b""
    assert telnet.show_input() == WONT_ECHO


def test_unasked_do_echo_is_refused_and_dont_echo_withdraws():
    """A DO ECHO nobody offered is refused; a DONT ECHO while echoing is acknowledged."""
    telnet = Telnet()
    assert telnet.receive(DO_ECHO)[1] == WONT_ECHO
    telnet.hide_input()
    telnet.receive(DO_ECHO)
    assert telnet.receive(DONT_ECHO)[1] == WONT_ECHO
    assert telnet.show_input() == b""


def test_nothing_is_sent_to_a_peer_that_never_spoke_telnet():
    """Hiding input costs a peer that sent no telnet command nothing."""
    telnet = Telnet()
    telnet.receive(b"caf\xe9 \xff\n")
    assert telnet.hide_input() == b"" and telnet.show_input() == b""


# The protocol


def test_ctrl_c_in_telnet_answers_the_mark_and_says_goodbye():
    """Ctrl+C from telnet, with no newline after it, gets WILL TM, then Goodbye and a close."""
    factory = make_factory()
    alice, bob = joined(factory, "alice", "bob")
    alice.raw()
    alice.protocol.dataReceived(CTRL_C)
    alice.settle()
    raw = alice.raw()
    assert raw.startswith(WILL_TIMING_MARK)
    assert b"Goodbye!" in raw
    assert alice.transport.disconnecting
    alice.close()
    assert "[Server] alice left the chat (quit)" in bob.lines()


def test_break_in_telnet_says_goodbye_even_before_joining():
    """IAC BRK at the nickname prompt says Goodbye and closes."""
    connection = Connection(make_factory())
    connection.raw()
    connection.protocol.dataReceived(SEND_BRK)
    connection.settle()
    assert b"Goodbye!" in connection.raw()
    assert connection.transport.disconnecting


def test_lines_before_ctrl_c_are_still_sent():
    """A line that arrived with the Ctrl+C, before it, still reaches the room."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    alice.protocol.dataReceived(b"last words\r\n" + CTRL_C)
    alice.settle()
    assert bob.lines() == ["alice: last words"]


def test_telnet_commands_are_cut_out_of_lines():
    """Telnet commands inside a line are cut out instead of shown."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    alice.raw()
    alice.send(b"hi\xff\xf1 th\xff\xfb\x18ere\r")
    assert bob.lines() == ["alice: hi there"]
    assert alice.raw() == b"\xff\xfe\x18"


def test_invalid_0xff_bytes_show_as_replacement_characters():
    """0xFF bytes that start no telnet command show as U+FFFD, like any invalid UTF-8."""
    alice, bob = joined(make_factory(), "alice", "bob")
    bob.lines()
    alice.send(b"caf\xe9 \xff\xfe")
    alice.send(b"a\xffb \xff\xff")
    assert bob.lines() == ["alice: caf\ufffd \ufffd\ufffd", "alice: a\ufffdb \ufffd"]
    assert b"\xff" not in alice.raw()


def test_secret_prompt_hides_input_in_telnet():
    """A secret prompt asks a telnet client not to echo, and gives echo back after the answer."""
    (alice,) = joined(make_factory(), "alice")
    alice.send(b"\xff\xf1/who")
    alice.raw()
    answers = []
    alice.protocol.ask("Password:", answers.append, secret=True)
    alice.settle()
    raw = alice.raw()
    assert raw.startswith(WILL_ECHO) and b"Password:" in raw
    alice.protocol.dataReceived(DO_ECHO)
    assert alice.raw() == b""
    alice.send(b"pass word", ending=b"\r\n")
    assert answers == ["pass word"]
    assert alice.raw() == WONT_ECHO
    alice.protocol.dataReceived(DONT_ECHO)
    assert alice.raw() == b""


def test_secret_prompt_hides_input_after_lines_ending_in_cr_lf():
    """Debian's telnet sends no command until Ctrl+C; its CR LF line endings are enough to hide a password."""
    factory = make_factory()
    alice = Connection(factory)
    alice.send("alice", ending=b"\r\n")
    alice.raw()
    alice.protocol.ask("Password:", lambda password: None, secret=True)
    alice.settle()
    assert alice.raw().startswith(WILL_ECHO)


def test_two_secret_prompts_in_a_row_keep_input_hidden():
    """A second secret prompt asked by the first answer keeps echo off, negotiating nothing more."""
    (alice,) = joined(make_factory(), "alice")
    alice.send(b"\xff\xf1")
    answers = []

    def first(password):
        answers.append(password)
        alice.protocol.ask("Again:", answers.append, secret=True)

    alice.protocol.ask("Password:", first, secret=True)
    alice.protocol.dataReceived(DO_ECHO)
    alice.settle()
    alice.raw()
    alice.send("one")
    assert b"\xff" not in alice.raw()
    alice.send("two")
    assert answers == ["one", "two"]
    assert alice.raw() == WONT_ECHO


def test_nc_users_never_receive_telnet_bytes():
    """A connection that sent no telnet command gets no telnet byte, even at a secret prompt."""
    (alice,) = joined(make_factory(), "alice")
    alice.send(b"caf\xe9 \xff\xfe")
    alice.protocol.ask("Password:", lambda password: None, secret=True)
    alice.send("secret")
    alice.protocol.quit()
    alice.settle()
    assert b"\xff" not in alice.raw()
