"""
The mechanics every connection shares, whatever it speaks: the output queue
(producer, backlog, slow readers, the socket fast path), the input gate
(holds, pacing), framing and per-address limits.
"""
