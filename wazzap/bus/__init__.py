"""
Room buses: how events reach the members of rooms.  C{local} keeps rooms in
this process; a Redis bus, later, the same contract across processes.
"""
