"""
The telnet side of a connection: commands cut out of the byte stream before
it is framed into lines, and answered the way a polite server does.

Grammar of what is recognised (RFC 854; IAC is the byte 0xFF):

    command     = IAC %xF1-F9                    ; NOP, DM, BRK, IP, AO, AYT, EC, EL, GA
                / IAC %xFB-FE option             ; WILL, WONT, DO, DONT an option
                / IAC SB *OCTET IAC SE           ; subnegotiation, ignored
    data        = IAC IAC                        ; the byte 0xFF itself
    option      = any byte but CR or LF

A line ending always ends a line: no command swallows a CR or LF, and a
subnegotiation stops at LF.  Any other 0xFF is left in the data, where it is
invalid UTF-8 and shows as U+FFFD.  A command may be split across reads.

Every option is refused (DO x gets WONT x, WILL x gets DONT x; a refusal of
something we do not do gets no answer, so nothing loops), except:

  - TIMING-MARK: DO TM gets WILL TM at once.  Debian's telnet sends IAC IP
    IAC DO TM for Ctrl+C and shows nothing until the mark is answered.
  - ECHO: while a password is typed the server offers WILL ECHO, so that the
    client stops echoing, and WONT ECHO afterwards; negotiated as RFC 1143
    says, so a client that answers late or changes its mind causes no loop.
"""

IAC = 255
DONT = 254
DO = 253
WONT = 252
WILL = 251
SB = 250
IP = 244
BRK = 243
SE = 240
ECHO = 1
TIMING_MARK = 6

_LINE_ENDINGS = (ord("\r"), ord("\n"))

# The states of an option of ours, as RFC 1143 names them: WANT_* while an
# offer (WILL) or a withdrawal (WONT) waits for its answer.
_NO, _YES, _WANT_NO, _WANT_YES = "no", "yes", "want no", "want yes"


class Telnet:
    """
    The telnet state of one connection: an unfinished command carried over
    from the last read, and whether the server echoes for the client.

    A connection gets one once it sends a 0xFF byte or a line ending in
    CR LF: nc users do neither, and are never sent a telnet byte.
    """

    __slots__ = ("spoken", "_unfinished", "_in_subnegotiation", "_echo", "_echo_queued")

    def __init__(self, spoken=False):
        #: Whether the peer is taken for a telnet client: it sent a complete
        #: telnet command, or ends its lines as telnet does.  Only then is it
        #: sent any telnet byte.
        self.spoken = spoken
        self._unfinished = b""
        self._in_subnegotiation = False
        self._echo = _NO
        self._echo_queued = False

    def receive(self, data):
        """
        Cut the telnet commands out of C{data}.

        @return: C{(data, answer, interrupted)}: the bytes left for framing,
            the bytes to send back, and whether the user asked to interrupt
            (IP, from Ctrl+C, or BRK).
        """
        data = self._unfinished + data
        self._unfinished = b""
        kept, answer = [], []
        interrupted = False
        position, end = 0, len(data)
        while position < end:
            if self._in_subnegotiation:
                position = self._skip_subnegotiation(data, position)
                continue
            iac = data.find(b"\xff", position)
            if iac < 0:
                kept.append(data[position:])
                break
            kept.append(data[position:iac])
            if iac + 1 == end or (WILL <= data[iac + 1] <= DONT and iac + 2 == end):
                self._unfinished = data[iac:]
                break
            verb = data[iac + 1]
            if verb == IAC:
                kept.append(b"\xff")
                position = iac + 2
            elif WILL <= verb <= DONT:
                if data[iac + 2] in _LINE_ENDINGS:
                    kept.append(b"\xff")  # not a command: the line ends here
                    position = iac + 1
                else:
                    self.spoken = True
                    answer.append(self._negotiate(verb, data[iac + 2]))
                    position = iac + 3
            elif verb == SB:
                self.spoken = True
                self._in_subnegotiation = True
                position = iac + 2
            elif verb > SE:
                self.spoken = True
                interrupted = interrupted or verb in (IP, BRK)
                position = iac + 2
            else:
                # Not a command: the 0xFF stays, as the invalid byte it is.
                kept.append(b"\xff")
                position = iac + 1
        return b"".join(kept), b"".join(answer), interrupted

    def _skip_subnegotiation(self, data, position):
        """
        Skip subnegotiation bytes from C{position}; return where data resumes.
        """
        line_end = data.find(b"\n", position)
        stop = len(data) if line_end < 0 else line_end
        iac = data.find(b"\xff", position, stop)
        if iac < 0:
            if line_end >= 0:
                self._in_subnegotiation = False
            return stop
        if iac + 1 == len(data):
            self._unfinished = b"\xff"
            return len(data)
        if data[iac + 1] == SE:
            self._in_subnegotiation = False
        elif data[iac + 1] == ord("\n"):
            return iac + 1  # the line ending ends the subnegotiation
        return iac + 2

    def _negotiate(self, verb, option):
        """
        The answer to C{IAC verb option}: bytes, often none.
        """
        if option == ECHO and verb in (DO, DONT):
            return self._echo_answer(verb == DO)
        if verb == DO:
            return _command(WILL if option == TIMING_MARK else WONT, option)
        if verb == WILL:
            return _command(DONT, option)
        return b""  # WONT or DONT something we neither do nor asked for

    def _echo_answer(self, enable):
        """
        Follow RFC 1143 for the peer's DO ECHO (C{enable}) or DONT ECHO.
        """
        state, queued = self._echo, self._echo_queued
        self._echo_queued = False
        if state == _WANT_YES and enable and queued:
            self._echo = _WANT_NO
            return _command(WONT, ECHO)
        if state == _WANT_NO and not enable and queued:
            self._echo = _WANT_YES
            return _command(WILL, ECHO)
        if state in (_WANT_YES, _WANT_NO):
            # An answer to our offer or withdrawal (or, after a withdrawal
            # with nothing queued, a contradiction RFC 1143 settles as NO).
            self._echo = _YES if enable and (state == _WANT_YES or queued) else _NO
            return b""
        if enable and state == _NO:
            return _command(WONT, ECHO)  # offered by nobody: refused
        if not enable and state == _YES:
            self._echo = _NO
            return _command(WONT, ECHO)
        return b""

    def hide_input(self):
        """
        The bytes that ask a telnet client to stop echoing what is typed (the
        server says it echoes, and echoes nothing): none for non-telnet peers.
        """
        return self._want_echo(True)

    def show_input(self):
        """
        The bytes that give a telnet client its echo back.
        """
        return self._want_echo(False)

    def _want_echo(self, enable):
        if not self.spoken:
            return b""
        state = self._echo
        if state == (_NO if enable else _YES):
            self._echo = _WANT_YES if enable else _WANT_NO
            return _command(WILL if enable else WONT, ECHO)
        # Waiting for an answer: RFC 1143 queues the opposite wish, or drops
        # a queued one that this wish cancels.
        if state in (_WANT_YES, _WANT_NO):
            self._echo_queued = (state == _WANT_NO) == enable
        return b""


def _command(verb, option):
    return bytes((IAC, verb, option))
